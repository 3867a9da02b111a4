"""Elements only the server sets on a new resource, whatever a client sends (pure). On a
new version of a stored resource they carry over, and a client sending another value is
refused (`policy.elements`)."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.extensions import (
    CLOSED_AT_URL,
    DMP_FERMETURE_URL,
    DMP_RATTACHEMENT_MES_URL,
    FILED_AT_URL,
    STRUCTURED_CONTENT_URL,
)

# extensions a new resource of the type never takes from the client
SERVER_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "DocumentReference": (FILED_AT_URL, STRUCTURED_CONTENT_URL),
    "Patient": (CLOSED_AT_URL, DMP_FERMETURE_URL, DMP_RATTACHEMENT_MES_URL),
}


def _without(resource: dict[str, Any], urls: tuple[str, ...]) -> list[Any]:
    return [
        e
        for e in resource.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") in urls)
    ]


def on_create(rtype: str, resource: dict[str, Any], now: str) -> dict[str, Any]:
    """A DocumentReference records when it was filed (start of the INVISIBLE_PATIENT
    embargo); a record (Patient) opens active, not closed and not yet linked to Mon espace
    santé."""
    urls = SERVER_EXTENSIONS.get(rtype)
    if not urls:
        return resource
    out = dict(resource)
    kept = _without(resource, urls)
    if rtype == "DocumentReference":
        kept.append({"url": FILED_AT_URL, "valueInstant": now})
    if rtype == "Patient":
        kept.append({"url": DMP_RATTACHEMENT_MES_URL, "valueBoolean": False})
    if kept:
        out["extension"] = kept
    else:
        out.pop("extension", None)
    if rtype == "Patient":
        out["active"] = True
    return out
