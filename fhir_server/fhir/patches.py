"""A PATCH body applied to a stored resource (pure): JSON Patch (an array of operations)
or FHIRPath Patch (a `Parameters`), then what the DMP reads in the result: the archive
flag under one URL, the confidentiality code kept, and `entered-in-error` as a request
to delete (TD3.3c)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_server.errors import FhirError, Issue
from fhir_server.fhir import archive_flag, label_intent
from fhir_server.fhir.fhirpath_patch import apply_fhirpath_patch
from fhir_server.fhir.jsonpatch import apply_patch

Json = dict[str, Any]
# the status a client sets to delete a document (TD3.3c); MHD has no such status, so it is
# never stored: the server deletes the document (author only) instead
DELETED_STATUS = "entered-in-error"


def is_fhirpath_patch(body: Any) -> bool:
    return isinstance(body, Mapping) and body.get("resourceType") == "Parameters"


def patched(rtype: str, before: Json, body: Any) -> Json:
    """The resource after the patch, as the DMP reads it."""
    after = (
        apply_fhirpath_patch(before, body) if is_fhirpath_patch(body) else apply_patch(before, body)
    )
    if rtype == "DocumentReference":
        after = archive_flag.normalized(before, after)
        label_intent.check_kept(before, after)
    return after


def deletion_requested(rtype: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """A patch that sets `entered-in-error` asks for the document's deletion; it may change
    nothing else (a deletion and a change at once would be half applied)."""
    if rtype != "DocumentReference" or after.get("status") != DELETED_STATUS:
        return False
    rest = {k: v for k, v in after.items() if k not in ("status", "meta")}
    kept = {k: v for k, v in before.items() if k not in ("status", "meta")}
    if rest != kept:
        raise FhirError(
            422,
            [
                Issue(
                    "business-rule",
                    f"status {DELETED_STATUS} deletes the document: the patch may change "
                    "nothing else",
                    expression=("DocumentReference.status",),
                )
            ],
        )
    return True
