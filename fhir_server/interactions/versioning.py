"""Building the next version of a resource: server-assigned id, meta stamping, index
terms and unique keys, as one Write for the store (pure)."""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.fhir.uniqueness import unique_keys
from fhir_server.search.index import extract_terms
from fhir_server.storage.port import Stored, Write, WriteKind


def new_id() -> str:
    return str(uuid.uuid4())


def stamp(resource: dict[str, Any], id: str, version: int, last_updated: str) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = last_updated
    out = {"resourceType": resource["resourceType"], "id": id, "meta": meta}
    out.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return out


def make_write(
    kind: WriteKind,
    rtype: str,
    id: str,
    resource: dict[str, Any] | None,
    *,
    current: Stored | None,
    now: str,
    extra_keys: tuple[str, ...] = (),
) -> Write:
    version = current.version + 1 if current else 1
    stamped = stamp(resource, id, version, now) if resource is not None else None
    return Write(
        kind=kind,
        rtype=rtype,
        id=id,
        version=version,
        last_updated=now,
        resource=stamped,
        expected_version=current.version if current else None,
        index=extract_terms(rtype, stamped) if stamped is not None else extract_terms(rtype, {}),
        unique_keys=unique_keys(rtype, stamped) + extra_keys,
    )
