"""Bundles the server returns: history and searchset (pure)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from fhir_server.records import Stored


def _body(s: Stored, fragments: bool) -> Any:
    """The entry's resource; with `fragments`, the stored JSON bytes spliced in as they
    are (orjson.Fragment) instead of parsed and serialised again: search's hot path."""
    if fragments and s._resource is None and s.content is not None:
        return orjson.Fragment(s.content)
    return s.resource


def page_url(base: str, path: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return f"{base}/{path}" + (f"?{query}" if query else "")


def links(
    base: str,
    path: str,
    params: list[tuple[str, str]],
    next_cursor: str | None,
) -> list[dict[str, str]]:
    kept = [(k, v) for k, v in params if k != "_cursor"]
    out = [{"relation": "self", "url": page_url(base, path, params)}]
    if next_cursor is not None:
        out.append(
            {"relation": "next", "url": page_url(base, path, [*kept, ("_cursor", next_cursor)])}
        )
    return out


def _history_entry(base: str, s: Stored) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{base}/{s.rtype}/{s.id}"}
    if s.resource is not None:
        entry["resource"] = s.resource
    status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}
    entry["request"] = {
        "method": s.method,
        "url": f"{s.rtype}/{s.id}" if s.method != "POST" else s.rtype,
    }
    entry["response"] = {
        "status": status.get(s.method, "200 OK"),
        "etag": f'W/"{s.version}"',
        "lastModified": s.last_updated,
    }
    return entry


def history_bundle(
    base: str,
    path: str,
    params: list[tuple[str, str]],
    entries: list[Stored],
    next_cursor: str | None,
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "history",
        "link": links(base, path, params, next_cursor),
        "entry": [_history_entry(base, s) for s in entries],
    }


def searchset_bundle(
    base: str,
    path: str,
    params: list[tuple[str, str]],
    matches: list[Stored],
    next_cursor: str | None,
    *,
    total: int | None = None,
    included: list[Stored] = (),  # type: ignore[assignment]
    outcome: dict[str, Any] | None = None,
    fragments: bool = False,
) -> dict[str, Any]:
    """fragments=True only when the bundle goes straight to orjson (JSON responses)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links(base, path, params, next_cursor)
    entries = [
        {
            "fullUrl": f"{base}/{s.rtype}/{s.id}",
            "resource": _body(s, fragments),
            "search": {"mode": "match"},
        }
        for s in matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{s.rtype}/{s.id}",
            "resource": _body(s, fragments),
            "search": {"mode": "include"},
        }
        for s in included
    ]
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return bundle
