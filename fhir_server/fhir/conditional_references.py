"""Conditional references (`Patient?identifier=<system>|<INS>`, FHIR R4 3.1.0.4.4 in
transactions), found and rewritten in a resource (pure). Which resource one names is
decided through the Gate (`interactions/conditional_references.py`)."""

from __future__ import annotations

import re
from typing import Any

# Type?query: a resource type, a question mark, then a search query
_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]{1,63})\?(.+)", re.S)


def parse(reference: Any) -> tuple[str, str] | None:
    """(type, query) of a conditional reference, None for any other value."""
    if not isinstance(reference, str):
        return None
    m = _CONDITIONAL.fullmatch(reference)
    return (m.group(1), m.group(2)) if m else None


def find(value: Any) -> list[str]:
    """Every conditional reference in `value` (Reference.reference values), in order."""
    out: list[str] = []
    if isinstance(value, dict):
        ref = value.get("reference")
        if parse(ref) is not None and ref not in out:
            out.append(ref)
        for k, v in value.items():
            if k != "reference":
                out += [r for r in find(v) if r not in out]
    elif isinstance(value, list):
        for v in value:
            out += [r for r in find(v) if r not in out]
    return out


def rewrite(value: Any, resolved: dict[str, str]) -> Any:
    """`value` with each conditional Reference.reference replaced by the `Type/id` found."""
    if isinstance(value, dict):
        out = {k: rewrite(v, resolved) for k, v in value.items() if k != "reference"}
        if "reference" in value:
            ref = value["reference"]
            out["reference"] = resolved.get(ref, ref) if isinstance(ref, str) else ref
            # keep the key order the client sent
            return {k: out[k] for k in value}
        return out
    if isinstance(value, list):
        return [rewrite(v, resolved) for v in value]
    return value
