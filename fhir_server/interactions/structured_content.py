"""The structured content of a filed CDA, written in the same commit as its document.

`extract` reads the body (pure, `cda.extraction`); `mark` records on the new
DocumentReference what was extracted and skipped; `writes` creates the derived resources,
each stamped with its document's facts (`fhir.derived.restamp`), a lab report with its
copy, the filed document (`fhir.derived.presented_form`). Their ids come from the
document's uniqueId and the element's position: a document filed again (same uniqueId) is
answered with the filed one before any of this runs, so refiling creates nothing.
"""

from __future__ import annotations

from typing import Any

from fhir_server.cda.extraction import BodyExtraction, extract_body, summary
from fhir_server.cda.mapping import CdaDocument
from fhir_server.fhir.derived import (
    facts_of,
    presented_form,
    restamp,
    structured_content_extension,
)
from fhir_server.fhir.extensions import STRUCTURED_CONTENT_URL
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import Write

Json = dict[str, Any]


def extract(cda: CdaDocument | None) -> BodyExtraction | None:
    """The body's structured content; None for a document whose body is not read."""
    if cda is None:
        return None
    extraction = extract_body(cda)
    return extraction if extraction.resources or extraction.skipped else None


def mark(document: Json, extraction: BodyExtraction | None) -> Json:
    """The DocumentReference with its account of the extraction (the server's alone)."""
    kept = [
        e
        for e in document.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") == STRUCTURED_CONTENT_URL)
    ]
    if extraction is not None:
        kept.append(structured_content_extension(summary(extraction)))
    out = dict(document)
    if kept:
        out["extension"] = kept
    else:
        out.pop("extension", None)
    return out


def writes(extraction: BodyExtraction | None, document: Json, now: str) -> list[Write]:
    """One create per derived resource, carrying the stored document's facts."""
    if extraction is None:
        return []
    facts = facts_of(document)
    copy = presented_form(document)
    return [
        make_write(
            "create",
            res["resourceType"],
            res["id"],
            restamp(_with_copy(res, copy), facts),
            current=None,
            now=now,
        )
        for res in extraction.resources
    ]


def _with_copy(res: Json, copy: list[Json] | None) -> Json:
    """A lab report names its copy, the filed document itself (FR Document Core's
    `presentedForm`), by the URL of its Binary."""
    if copy is None or res["resourceType"] != "DiagnosticReport":
        return res
    return {**res, "presentedForm": copy}
