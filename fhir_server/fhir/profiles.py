"""The profiles the server's resources claim in `meta.profile`, read from
`profiles/claimed-profiles.json` (shipped as `fhir_server.profiles`): a reviewer reads and
amends the table; this module only matches resources against it (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class ProfileRow:
    resource_type: str
    profile: str
    category: str | None = None  # a code of one of its categories
    code: str | None = None  # a code of its code


@cache
def profile_rows() -> tuple[ProfileRow, ...]:
    text = resources.files("fhir_server.profiles").joinpath("claimed-profiles.json")
    return tuple(
        ProfileRow(r["resourceType"], r["profile"], r.get("category"), r.get("code"))
        for r in json.loads(text.read_text("utf-8"))["profiles"]
    )


def _codes(concepts: Any) -> set[str]:
    if isinstance(concepts, dict):
        concepts = [concepts]
    return {
        str(c.get("code"))
        for concept in concepts or []
        if isinstance(concept, dict)
        for c in concept.get("coding") or []
        if isinstance(c, dict)
    }


@cache
def _rows_of(resource_type: str) -> tuple[ProfileRow, ...]:
    # every derived resource of a filing is matched: rows by type, its codes read once
    return tuple(r for r in profile_rows() if r.resource_type == resource_type)


def claimed_profile(resource: Json) -> str | None:
    """The profile of the first matching row, else None."""
    rows = _rows_of(str(resource.get("resourceType")))
    if not rows:
        return None
    categories, codes = _codes(resource.get("category")), _codes(resource.get("code"))
    return next(
        (
            r.profile
            for r in rows
            if (r.category is None or r.category in categories)
            and (r.code is None or r.code in codes)
        ),
        None,
    )


def claim_profile(resource: Json) -> None:
    """Claim in `meta.profile` the profile of the first matching row; a resource no row
    matches claims none."""
    profile = claimed_profile(resource)
    if profile is not None:
        resource["meta"] = {**resource.get("meta", {}), "profile": [profile]}
