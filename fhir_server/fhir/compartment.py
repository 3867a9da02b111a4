"""Whose record a resource belongs to (the Patient compartment owner), read from the
resource itself (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# where each type names its patient
PATIENT_ELEMENT: dict[str, str] = {
    "DocumentReference": "subject",
    "Consent": "patient",
    "List": "subject",
    "Communication": "subject",
    "Observation": "subject",
    "DiagnosticReport": "subject",
    "Condition": "subject",
    "AllergyIntolerance": "patient",
    "MedicationStatement": "subject",
    "Procedure": "subject",
    "Immunization": "patient",
    # laboratory samples and isolates (CR-BIO)
    "Specimen": "subject",
}


def local_id(reference: Any, rtype: str = "Patient") -> str | None:
    """The id in a reference to `rtype` ("Patient/x", or a full URL ending so)."""
    ref = reference.get("reference") if isinstance(reference, Mapping) else reference
    if not isinstance(ref, str):
        return None
    parts = ref.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == rtype and parts[-1]:
        return parts[-1]
    return None


def _audit_patient(resource: Mapping[str, Any]) -> str | None:
    for entity in resource.get("entity") or []:
        pid = local_id((entity or {}).get("what"))
        if pid:
            return pid
    return None


def patient_of(rtype: str, resource: Mapping[str, Any] | None) -> str | None:
    if resource is None:
        return None
    if rtype == "Patient":
        return resource.get("id")
    if rtype == "AuditEvent":
        return _audit_patient(resource)
    element = PATIENT_ELEMENT.get(rtype)
    return local_id(resource.get(element)) if element else None


def binary_document(resource: Mapping[str, Any] | None) -> str | None:
    """The DocumentReference a Binary is the content of (Binary.securityContext)."""
    if resource is None:
        return None
    return local_id(resource.get("securityContext"), "DocumentReference")
