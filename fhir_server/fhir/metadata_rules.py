"""What may change in a resource after it is filed (PDSm Flux 03): for a
DocumentReference only its status, its security labels and the archive flag. Pure."""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError, Issue

IS_ARCHIVED_URL = "http://esante.gouv.fr/cisis/fhir/StructureDefinition/PDSm_isArchived"

# type -> (top-level elements that may change, extension URLs that may change)
MUTABLE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "DocumentReference": (
        frozenset({"status", "securityLabel", "meta"}),
        frozenset({IS_ARCHIVED_URL}),
    ),
}

# statuses a DocumentReference may take through a metadata change (MHD: no entered-in-error)
ALLOWED_STATUS = {"DocumentReference": frozenset({"current", "superseded"})}


def _frozen_extensions(resource: dict[str, Any], mutable_urls: frozenset[str]) -> list[Any]:
    return [
        e
        for e in resource.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") in mutable_urls)
    ]


def check_metadata_change(rtype: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Refuse (405) a change outside the mutable elements; 422 for a forbidden status.
    Types without a row (Patient, Consent...) may change freely."""
    if rtype not in MUTABLE:
        return
    elements, urls = MUTABLE[rtype]
    changed = sorted(
        key
        for key in set(before) | set(after)
        if key not in elements and key != "extension" and before.get(key) != after.get(key)
    )
    if _frozen_extensions(before, urls) != _frozen_extensions(after, urls):
        changed.append("extension")
    if changed:
        raise FhirError(
            405,
            [
                Issue(
                    "not-supported",
                    f"Only {', '.join(sorted(elements - {'meta'}))} and the archive flag may change after "
                    f"filing; this change touches {', '.join(changed)}",
                    expression=tuple(f"{rtype}.{c}" for c in changed),
                )
            ],
        )
    allowed = ALLOWED_STATUS.get(rtype)
    if allowed and after.get("status") not in allowed:
        raise FhirError(
            422,
            [
                Issue(
                    "business-rule",
                    f"status {after.get('status')!r} is not allowed: use one of {sorted(allowed)}",
                    expression=(f"{rtype}.status",),
                )
            ],
        )
