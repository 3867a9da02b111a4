"""Index terms extracted from a resource on write (pure). Minimal first cut: identifiers
and the patient reference; the search issue extends it to every parameter."""

from __future__ import annotations

from typing import Any

from fhir_server.storage.port import IndexTerms

# where each type points at its patient (the compartment owner, the shard key)
PATIENT_PATHS: dict[str, str] = {
    "DocumentReference": "subject",
    "Consent": "patient",
    "List": "subject",
    "Communication": "subject",
}


def _token_values(system: str | None, code: str | None) -> list[str]:
    if not code:
        return []
    values = [code, f"{system}|{code}" if system else f"|{code}"]
    return values


def _patient_id(rtype: str, resource: dict[str, Any]) -> str | None:
    from fhir_server.fhir.compartment import patient_of

    return patient_of(rtype, resource)


def extract_terms(rtype: str, resource: dict[str, Any]) -> IndexTerms:
    tokens: list[tuple[str, str]] = []
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for ident in identifiers:
        if isinstance(ident, dict):
            tokens += [
                ("identifier", v) for v in _token_values(ident.get("system"), ident.get("value"))
            ]
    patient = _patient_id(rtype, resource)
    refs = [("patient", f"Patient/{patient}")] if patient and rtype != "Patient" else []
    return IndexTerms(tokens=tuple(tokens), refs=tuple(refs), patient=patient)
