"""A document's archive flag (TD3.3d) kept as one extension under the guide's URL (pure).
A patch may set it under the guide's URL or the older one this server used; the new
version carries it once, under `IS_ARCHIVED_URL`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.extensions import IS_ARCHIVED_URL, IS_ARCHIVED_URLS


def _flags(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        e
        for e in resource.get("extension") or []
        if isinstance(e, Mapping) and e.get("url") in IS_ARCHIVED_URLS
    ]


def _fail(message: str) -> FhirError:
    return FhirError(
        422, [Issue("business-rule", message, expression=("DocumentReference.extension",))]
    )


def normalized(before: Mapping[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`after` with its archive flag as one `IS_ARCHIVED_URL` extension: the value the
    patch set (the one that differs from the stored flag) wins."""
    flags = _flags(after)
    if not flags:
        return after
    values = []
    for ext in flags:
        if set(ext) != {"url", "valueBoolean"} or not isinstance(ext["valueBoolean"], bool):
            raise _fail("The archive flag is an extension with a valueBoolean (true or false)")
        values.append(ext["valueBoolean"])
    old = [e.get("valueBoolean") for e in _flags(before)]
    stored = old[0] if old else False
    changed = {v for v in values if v != stored}
    if len(changed) > 1 or (len(set(values)) > 1 and not changed):
        raise _fail("The archive flag is given twice with different values")
    value = changed.pop() if changed else values[0]
    out = dict(after)
    first = next(i for i, e in enumerate(after["extension"]) if e in flags)
    rest = [e for e in after["extension"] if e not in flags]
    rest.insert(first, {"url": IS_ARCHIVED_URL, "valueBoolean": value})
    out["extension"] = rest
    return out
