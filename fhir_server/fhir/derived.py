"""Resources derived from a filed document (its structured content), and the document
facts each one carries so that its document's rules govern it (pure).

A derived resource is the extraction's output plus, from its DocumentReference:

- `subject` (`patient` for an AllergyIntolerance or an Immunization): the document's
  patient;
- extension `source-document` (valueReference DocumentReference/<id>): where it comes
  from, and whose rules apply (a read by id follows the live document);
- `meta.source`: the document's uniqueId (masterIdentifier value), for information;
- `meta.security`: the document's security labels (MASQUE_PS, INVISIBLE_PATIENT...);
- extensions `document-class` (valueCoding), `document-author` (valueIdentifier, one per
  author RPPS) and `filed-at` (valueInstant): the other facts the store's visibility
  filter compiles against (`search.visibility.VISIBILITY_PARAMS`);
- extension `document-status` (valueCode current | superseded): a replaced document's
  data leaves the default view of searches (`search.params.DEFAULTS`), not the policy's.

`restamp` rewrites those facts when the document's change (mask, unmask, replacement); the
extracted content itself never changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.fhir.compartment import PATIENT_ELEMENT
from fhir_server.fhir.extensions import (
    DOCUMENT_AUTHOR_URL,
    DOCUMENT_CLASS_URL,
    DOCUMENT_STATUS_URL,
    FILED_AT_URL,
    SOURCE_DOCUMENT_URL,
    STRUCTURED_CONTENT_URL,
    extension_value,
)
from fhir_server.policy.facts import author_rpps
from fhir_server.policy.model import CLASS_SYSTEM
from fhir_server.search.visibility import RPPS_SYSTEM

Json = dict[str, Any]

DERIVED_TYPES = (
    "Observation",
    "DiagnosticReport",
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "Procedure",
    "Immunization",
    # laboratory samples and isolates (CR-BIO)
    "Specimen",
)
_FACT_URLS = (
    SOURCE_DOCUMENT_URL,
    DOCUMENT_CLASS_URL,
    DOCUMENT_AUTHOR_URL,
    FILED_AT_URL,
    DOCUMENT_STATUS_URL,
)


def source_document(resource: Mapping[str, Any] | None) -> str | None:
    """The id of the DocumentReference a derived resource comes from."""
    if resource is None:
        return None
    ref = extension_value(resource, SOURCE_DOCUMENT_URL)
    target = ref.get("reference") if isinstance(ref, Mapping) else None
    if isinstance(target, str) and target.startswith("DocumentReference/"):
        return target.split("/", 1)[1]
    return None


def _labels(document: Mapping[str, Any]) -> list[Json]:
    return [
        dict(c)
        for concept in document.get("securityLabel") or []
        if isinstance(concept, Mapping)
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and c.get("code")
    ]


def _class_codings(document: Mapping[str, Any]) -> list[Json]:
    return [
        dict(c)
        for concept in document.get("category") or []
        if isinstance(concept, Mapping)
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and c.get("system") == CLASS_SYSTEM and c.get("code")
    ]


def document_extensions(document: Mapping[str, Any]) -> list[Json]:
    exts: list[Json] = [
        {
            "url": SOURCE_DOCUMENT_URL,
            "valueReference": {"reference": f"DocumentReference/{document['id']}"},
        }
    ]
    exts += [{"url": DOCUMENT_CLASS_URL, "valueCoding": c} for c in _class_codings(document)]
    exts += [
        {"url": DOCUMENT_AUTHOR_URL, "valueIdentifier": {"system": RPPS_SYSTEM, "value": rpps}}
        for rpps in sorted(author_rpps(document))
    ]
    if (filed := extension_value(document, FILED_AT_URL)) is not None:
        exts.append({"url": FILED_AT_URL, "valueInstant": filed})
    if isinstance(status := document.get("status"), str):
        exts.append({"url": DOCUMENT_STATUS_URL, "valueCode": status})
    return exts


@dataclass(frozen=True)
class Facts:
    """What a derived resource carries of its document, read once per document (a
    filing stamps every resource of its body with the same facts, which they share:
    resources are written as they are, never changed in place)."""

    subject: Any
    extensions: tuple[Json, ...]
    source: str | None
    labels: tuple[Json, ...]


def facts_of(document: Mapping[str, Any]) -> Facts:
    return Facts(
        document.get("subject"),
        tuple(document_extensions(document)),
        (document.get("masterIdentifier") or {}).get("value"),
        tuple(_labels(document)),
    )


def restamp(resource: Mapping[str, Any], document: Mapping[str, Any] | Facts) -> Json:
    """The derived resource carrying `document`'s current facts (any earlier ones gone)."""
    facts = document if isinstance(document, Facts) else facts_of(document)
    out = dict(resource)
    out[PATIENT_ELEMENT[str(resource["resourceType"])]] = facts.subject
    kept = [
        e
        for e in resource.get("extension") or []
        if not (isinstance(e, Mapping) and e.get("url") in _FACT_URLS)
    ]
    out["extension"] = [*kept, *facts.extensions]
    if "contained" in resource:
        # a contained BodyStructure (a procedure's approach site) names the patient too
        out["contained"] = [
            {**c, "patient": facts.subject} if c.get("resourceType") == "BodyStructure" else c
            for c in resource["contained"]
        ]
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k != "security"}
    if facts.source is not None:
        meta["source"] = facts.source
    if facts.labels:
        meta["security"] = list(facts.labels)
    out["meta"] = meta
    return out


def presented_form(document: Mapping[str, Any]) -> list[Json] | None:
    """A report's copy (`DiagnosticReport.presentedForm`): the document's own content,
    named by the URL of its Binary, never copied (None when it has no URL)."""
    content = document.get("content") or [{}]
    attachment = content[0].get("attachment") if isinstance(content[0], Mapping) else None
    if not isinstance(attachment, Mapping) or not attachment.get("url"):
        return None
    return [{k: v for k, v in attachment.items() if k in _PRESENTED}]


# what the copy says of the document's content: where, what, how big (never its bytes)
_PRESENTED = ("contentType", "language", "url", "size", "hash", "title", "creation")


def facts_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a document change must be carried to its derived resources."""
    return document_extensions(before) != document_extensions(after) or _labels(before) != _labels(
        after
    )


def structured_content_extension(summary: Mapping[str, Any]) -> Json:
    """The DocumentReference's account of its structured content: how many resources of
    each type were extracted, how many entries were skipped and why."""
    parts: list[Json] = [
        {"url": "extracted", "valueString": f"{rtype}: {count}"}
        for rtype, count in sorted(summary["extracted"].items())
    ]
    parts.append({"url": "skipped", "valueInteger": summary["skipped"]})
    parts += [{"url": "skipped-reason", "valueString": r} for r in summary["skipped_reasons"]]
    parts += [{"url": "warning", "valueString": w} for w in summary["warnings"]]
    return {"url": STRUCTURED_CONTENT_URL, "extension": parts}
