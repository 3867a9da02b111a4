"""A patient's record as the policy sees it, loaded once per request (`RequestCache`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_server.policy import ConsentFacts, PatientFacts, RecordStatus, parse_consents
from fhir_server.policy.facts import patient_facts
from fhir_server.search.plan import PatientIn, SearchPlan
from fhir_server.storage.port import Store, Stored

# a record holds a handful of Consents; more than this is not a record the policy reads
CONSENTS_MAX = 1000


@dataclass(frozen=True)
class Record:
    """The facts the policy reads of one record, and the resources they come from."""

    facts: PatientFacts
    consents: ConsentFacts
    patient: Mapping[str, Any] | None
    consent_resources: tuple[Mapping[str, Any], ...] = ()

    def with_patient(self, patient: Mapping[str, Any], now: datetime) -> Record:
        """The record as it would be with this version of its Patient."""
        facts = patient_facts(self.facts.id, patient, self.consents, now)
        return Record(facts, self.consents, patient, self.consent_resources)

    def with_consent(self, consent: Mapping[str, Any], now: datetime) -> Record:
        """The record as it would be with this version of one of its Consents."""
        others = [c for c in self.consent_resources if c.get("id") != consent.get("id")]
        resources = (*others, consent)
        consents = parse_consents(resources, self.facts.id, now)
        facts = patient_facts(self.facts.id, self.patient, consents, now)
        return Record(facts, consents, self.patient, resources)


NO_RECORD = Record(PatientFacts("", record=RecordStatus.ABSENT), ConsentFacts(), None)


def new_record(patient_id: str) -> Record:
    """The record a filing or a Patient creation opens (Mon espace santé: created unless
    opposed; an opposition is a Consent on an existing Patient)."""
    return Record(PatientFacts(patient_id), ConsentFacts(), None)


def consents_of(patient_id: str) -> SearchPlan:
    """Every Consent of the patient's record (the search `Consent?patient=ID`)."""
    return SearchPlan("Consent", (PatientIn((patient_id,)),), count=CONSENTS_MAX)


@dataclass
class RequestCache:
    """What one request has learnt of the store, so the policy reads each record once.

    records: patient id -> Record; patients: the Patients this request found by INS (the
    filing routes read them moments before the policy does)."""

    records: dict[str, Record] = field(default_factory=dict)
    patients: dict[str, Stored] = field(default_factory=dict)

    def forget_records(self) -> None:
        self.records.clear()


async def load_record(store: Store, cache: RequestCache, patient_id: str, now: datetime) -> Record:
    if patient_id in cache.records:
        return cache.records[patient_id]
    stored = cache.patients.get(patient_id) or await store.read("Patient", patient_id)
    patient = stored.resource if stored is not None and not stored.deleted else None
    result = await store.search(consents_of(patient_id))
    resources: Sequence[Mapping[str, Any]] = [s.resource for s in result.entries if s.resource]
    consents = parse_consents(resources, patient_id, now)
    record = Record(
        patient_facts(patient_id, patient, consents, now), consents, patient, tuple(resources)
    )
    cache.records[patient_id] = record
    return record
