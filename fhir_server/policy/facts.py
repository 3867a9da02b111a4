"""From stored FHIR resources to the facts the decision reads (pure): who the record
holder is, the state of the record, and what a document says of itself."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from fhir_server.auth.actor import FINESS_SYSTEM, RPPS_SYSTEM
from fhir_server.fhir.extensions import (
    CLOSED_AT_URL,
    DOCUMENT_AUTHOR_URL,
    DOCUMENT_CLASS_URL,
    FILED_AT_URL,
    extension_value,
)
from fhir_server.policy.consents import ConsentFacts
from fhir_server.policy.model import (
    CLASS_SYSTEM,
    VISIBILITY_SYSTEM,
    DocumentFacts,
    PatientFacts,
    RecordStatus,
)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _identifier_values(refs: Iterable[Any], system: str) -> list[str]:
    out = []
    for ref in refs:
        ident = ref.get("identifier") if isinstance(ref, Mapping) else None
        if isinstance(ident, Mapping) and ident.get("system") == system and ident.get("value"):
            out.append(str(ident["value"]))
    return out


def closed_at(patient: Mapping[str, Any]) -> datetime | None:
    return _instant(extension_value(patient, CLOSED_AT_URL))


ADULT_AGE = 18


def _latest_birth(value: Any) -> date | None:
    """The last day a (possibly partial: YYYY, YYYY-MM) birthDate can mean."""
    if not isinstance(value, str):
        return None
    parts = value[:10].split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 12
        day = int(parts[2]) if len(parts) > 2 else calendar.monthrange(year, month)[1]
        return date(year, month, day)
    except (ValueError, IndexError):
        return None


def is_minor(birth_date: Any, now: datetime) -> bool:
    """Under 18 at `now`. **decision**: a partial birth date counts from its last possible
    day (fail closed: a holder who may still be a minor is one); no birth date, adult."""
    born = _latest_birth(birth_date)
    if born is None:
        return False
    today = now.date()
    year = born.year + ADULT_AGE
    day = min(born.day, calendar.monthrange(year, born.month)[1])  # 29 February
    return date(year, born.month, day) > today


def patient_facts(
    patient_id: str,
    patient: Mapping[str, Any] | None,
    consents: ConsentFacts,
    now: datetime | None = None,
) -> PatientFacts:
    """A record is absent without its Patient, opposed by the latest record-level Consent
    deny, closed while it carries a closure instant; its holder is a minor at `now`."""
    if patient is None:
        return PatientFacts(patient_id, record=RecordStatus.ABSENT)
    treating = _identifier_values(patient.get("generalPractitioner") or [], RPPS_SYSTEM)
    if consents.record_opinion() == "opposed":
        record = RecordStatus.OPPOSED
    elif closed_at(patient) is not None:
        record = RecordStatus.CLOSED
    else:
        record = RecordStatus.OPEN
    deceased = bool(patient.get("deceasedBoolean")) or "deceasedDateTime" in patient
    minor = now is not None and is_minor(patient.get("birthDate"), now)
    return PatientFacts(patient_id, treating[0] if treating else None, record, deceased, minor)


def _codes(concepts: Any, system: str) -> list[str]:
    return [
        c["code"]
        for concept in concepts or []
        if isinstance(concept, Mapping)
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and c.get("system") == system and c.get("code")
    ]


def _contained(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f"#{c.get('id')}": c for c in document.get("contained") or [] if isinstance(c, Mapping)}


def _ids_behind(document: Mapping[str, Any], refs: Iterable[Any], system: str) -> frozenset[str]:
    """Identifier values (of `system`) of the resources `refs` designate: by identifier
    directly, or through contained resources (PractitionerRole -> Practitioner)."""
    contained = _contained(document)
    found: set[str] = set()
    pending = [r for r in refs if isinstance(r, Mapping)]
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        found.update(_identifier_values([ref], system))
        target = ref.get("reference")
        if not isinstance(target, str) or target in seen or target not in contained:
            continue
        seen.add(target)
        res = contained[target]
        found.update(
            str(i["value"])
            for i in res.get("identifier") or []
            if isinstance(i, Mapping) and i.get("system") == system and i.get("value")
        )
        pending.extend(
            res[k] for k in ("practitioner", "organization") if isinstance(res.get(k), Mapping)
        )
    return frozenset(found)


def author_rpps(document: Mapping[str, Any]) -> frozenset[str]:
    """RPPS of the document's authors (PDSm: contained Practitioner / PractitionerRole)."""
    return _ids_behind(document, document.get("author") or [], RPPS_SYSTEM)


def filed_at(document: Mapping[str, Any]) -> datetime | None:
    return _instant(extension_value(document, FILED_AT_URL))


def document_facts(document: Mapping[str, Any]) -> DocumentFacts:
    classes = _codes(document.get("category"), CLASS_SYSTEM)
    types = [
        c.get("code")
        for c in (document.get("type") or {}).get("coding") or []
        if isinstance(c, Mapping)
    ]
    custodian = sorted(_ids_behind(document, [document.get("custodian") or {}], FINESS_SYSTEM))
    return DocumentFacts(
        labels=frozenset(_codes(document.get("securityLabel"), VISIBILITY_SYSTEM)),
        author_rpps=author_rpps(document),
        class_code=classes[0] if classes else "",
        type_code=types[0] if types else None,
        filed_at=filed_at(document),
        status=str(document.get("status", "current")),
        custodian_finess=custodian[0] if custodian else None,
        filed_by_patient=bool(classes and classes[0] == "90"),
    )


def derived_facts(resource: Mapping[str, Any]) -> DocumentFacts:
    """The facts of its document that a derived resource (Observation, DiagnosticReport)
    carries (`fhir.derived`): a search result is checked on them without loading the
    document; a read by id loads the document itself."""
    labels = [
        str(c.get("code"))
        for c in (resource.get("meta") or {}).get("security") or []
        if isinstance(c, Mapping) and c.get("system") == VISIBILITY_SYSTEM and c.get("code")
    ]
    classes, authors = [], set()
    for ext in resource.get("extension") or []:
        if not isinstance(ext, Mapping):
            continue
        if ext.get("url") == DOCUMENT_CLASS_URL and (ext.get("valueCoding") or {}).get("code"):
            classes.append(str(ext["valueCoding"]["code"]))
        elif ext.get("url") == DOCUMENT_AUTHOR_URL:
            ident = ext.get("valueIdentifier") or {}
            if ident.get("system") == RPPS_SYSTEM and ident.get("value"):
                authors.add(str(ident["value"]))
    return DocumentFacts(
        labels=frozenset(labels),
        author_rpps=frozenset(authors),
        class_code=classes[0] if classes else "",
        filed_at=filed_at(resource),
        filed_by_patient=bool(classes and classes[0] == "90"),
    )
