"""Result shaping for `_summary` and `_elements` (pure): which elements of a matched
resource the Bundle carries. A shaped resource is tagged SUBSETTED, as FHIR requires."""

from __future__ import annotations

from functools import cache
from typing import Any

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def summary_elements(rtype: str) -> frozenset[str]:
    """Elements flagged isSummary in the FHIR R4 definitions (read once from the
    fhir.resources models, never on the request path after the first call)."""
    from fhir_server.fhir.resource_types import RESOURCE_TYPES

    model = RESOURCE_TYPES[rtype].model
    names = {
        field.alias or name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict)
        and field.json_schema_extra.get("summary_element_property")
    }
    return frozenset(names) | _ALWAYS


def _subsetted(resource: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    out["meta"] = meta
    return out


def shape(
    rtype: str, resource: dict[str, Any], summary: str | None, elements: tuple[str, ...]
) -> dict[str, Any]:
    if elements:
        return _subsetted(resource, _ALWAYS | frozenset(elements))
    if summary == "true":
        return _subsetted(resource, summary_elements(rtype))
    if summary == "text":
        return _subsetted(resource, _ALWAYS | {"text"})
    if summary == "data":
        return _subsetted(resource, frozenset(resource) - {"text"})
    return resource


def needs_shaping(summary: str | None, elements: tuple[str, ...]) -> bool:
    return bool(elements) or summary in ("true", "text", "data")
