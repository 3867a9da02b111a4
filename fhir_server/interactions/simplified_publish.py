"""ITI-105 simplified publish: one DocumentReference with its content in
`attachment.data`, filed as a two-entry ITI-65 publication (a Binary and the document), its
metadata derived from the CDA where the client left it out."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.fhir.transaction_bundle import Entry
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.provide_document import ProvideDocument, run_publication
from fhir_server.interactions.versioning import new_id

Json = dict[str, Any]


def has_attachment_data(resource: Any) -> bool:
    if not isinstance(resource, dict):
        return False
    # any shape may arrive here (the body is not validated yet): only a list of objects
    # with an attachment object counts, anything else goes on to validation (a 400)
    contents = resource.get("content")
    if not isinstance(contents, list) or not contents or not isinstance(contents[0], dict):
        return False
    attachment = contents[0].get("attachment")
    return isinstance(attachment, dict) and bool(attachment.get("data"))


def _simplified_entries(doc: Json) -> list[Entry]:
    """ITI-105 as a two-entry transaction: attachment.data moves out into a Binary."""
    doc = copy.deepcopy(doc)
    attachment = doc["content"][0]["attachment"]
    binary_url = f"urn:uuid:{new_id()}"
    binary = {
        "resourceType": "Binary",
        "contentType": attachment.get("contentType") or "application/octet-stream",
        "data": attachment.pop("data"),
    }
    attachment["url"] = binary_url
    return [
        Entry(0, "POST", "Binary", None, binary, binary_url, None, None),
        Entry(1, "POST", "DocumentReference", None, doc, f"urn:uuid:{new_id()}", None, None),
    ]


_ENTRY_TEXT = re.compile(r"^entry\[\d+\]: ")


_ENTRY_PATH = re.compile(r"^Bundle\.entry\[\d+\](\.resource)?")


def _unlocate(exc: FhirError) -> FhirError:
    """ITI-105 posts one resource: point its errors at it, not at the internal Bundle."""
    issues = [
        replace(
            i,
            diagnostics=_ENTRY_TEXT.sub("", i.diagnostics),
            expression=tuple(_ENTRY_PATH.sub("DocumentReference", x) for x in i.expression),
        )
        for i in exc.issues
    ]
    return FhirError(exc.status, issues, exc.headers)


async def simplified_publish(ctx: Context, doc: Json) -> WriteOutcome:
    """ITI-105: 201 with the DocumentReference, or 200 with the one filed already."""
    try:
        entries, results = await run_publication(
            ctx,
            lambda: _simplified_entries(doc),
            lambda: ProvideDocument(
                ctx.settings.max_body_bytes, require_submission_set=False, derive=True
            ),
        )
    except FhirError as exc:
        raise _unlocate(exc) from None
    document = entries[1]
    return WriteOutcome(document.status, results[document.index])
