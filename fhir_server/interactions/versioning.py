"""Building the next version of a resource: server-assigned id, meta stamping, index
terms and unique keys, as one Write for the store (pure)."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from fhir_server.fhir.uniqueness import unique_keys
from fhir_server.search.index import extract_terms
from fhir_server.storage.port import Stored, Write, WriteKind


def new_id() -> str:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.
    Ids made close in time sort close together, so every index keyed by id grows at its
    end: a filing dirties a few hot pages instead of one random page per index."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | rand & ~(0xF << 76 | 0x3 << 62)
    value |= 0x7 << 76 | 0x2 << 62  # version 7, RFC 4122 variant
    return str(uuid.UUID(int=value))


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
