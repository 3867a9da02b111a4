"""Elements only the server sets, whatever a client sends (pure)."""

from __future__ import annotations

from typing import Any

from fhir_server.policy.facts import FILED_AT_URL, extension_value

SERVER_EXTENSIONS = {"DocumentReference": (FILED_AT_URL,)}


def _without(resource: dict[str, Any], urls: tuple[str, ...]) -> list[Any]:
    return [
        e
        for e in resource.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") in urls)
    ]


def on_create(rtype: str, resource: dict[str, Any], now: str) -> dict[str, Any]:
    """A DocumentReference records when it was filed (start of the INVISIBLE_PATIENT
    embargo); any value sent by the client is replaced."""
    urls = SERVER_EXTENSIONS.get(rtype)
    if not urls:
        return resource
    out = dict(resource)
    out["extension"] = [*_without(resource, urls), {"url": FILED_AT_URL, "valueInstant": now}]
    return out


def on_update(rtype: str, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Server-set extensions carry over from the version being replaced."""
    urls = SERVER_EXTENSIONS.get(rtype)
    if not urls or before is None:
        return after
    kept = [
        {"url": url, "valueInstant": value}
        for url in urls
        if (value := extension_value(before, url)) is not None
    ]
    out = dict(after)
    out["extension"] = [*_without(after, urls), *kept]
    if not out["extension"]:
        del out["extension"]
    return out
