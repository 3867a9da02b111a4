"""From stored FHIR resources to the facts the decision reads (pure): who the record
holder is, the state of the record, and what a document says of itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fhir_server.auth.actor import FINESS_SYSTEM, RPPS_SYSTEM
from fhir_server.policy.consents import ConsentFacts
from fhir_server.policy.model import (
    CLASS_SYSTEM,
    VISIBILITY_SYSTEM,
    DocumentFacts,
    PatientFacts,
    RecordStatus,
)

# Server-set extensions: the instant a document was filed (start of the INVISIBLE_PATIENT
# embargo; DocumentReference.date is the document's own date), and a record's closure.
FILED_AT_URL = "https://dmp-fhir.invalid/StructureDefinition/filed-at"
CLOSED_AT_URL = "https://dmp-fhir.invalid/StructureDefinition/record-closed-at"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def extension_value(resource: Mapping[str, Any], url: str) -> Any:
    for ext in resource.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


def _identifier_values(refs: Iterable[Any], system: str) -> list[str]:
    out = []
    for ref in refs:
        ident = ref.get("identifier") if isinstance(ref, Mapping) else None
        if isinstance(ident, Mapping) and ident.get("system") == system and ident.get("value"):
            out.append(str(ident["value"]))
    return out


def closed_at(patient: Mapping[str, Any]) -> datetime | None:
    return _instant(extension_value(patient, CLOSED_AT_URL))


def patient_facts(
    patient_id: str, patient: Mapping[str, Any] | None, consents: ConsentFacts
) -> PatientFacts:
    """A record is absent without its Patient, opposed by the latest record-level Consent
    deny, closed while it carries a closure instant."""
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
    return PatientFacts(patient_id, treating[0] if treating else None, record, deceased)


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
