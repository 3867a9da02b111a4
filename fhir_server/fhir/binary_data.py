"""Document bytes kept beside the JSON, not inside it.

A Binary's `data` is the whole document (a CDA of 100+ KiB). Written as base64 inside the
JSON of both the current row and the history row, it tripled what every filing wrote and
cost a base64 encoding and decoding per filing. Both stores keep the JSON without `data`
and the raw bytes once per version (`kept_apart`): SQLite in segment files beside the
database (`sqlite_segments`; an in-memory store in its `resource_data` table), MongoDB in
the version's history document; `with_data` puts them back when a JSON form is
asked for, so callers see the resource as it was written.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

# the types whose `data` is kept aside
SPLIT_TYPES = frozenset({"Binary"})


def with_data(content: bytes, raw: bytes) -> bytes:
    """The JSON of a resource stored without its data, with the data back in (last key)."""
    encoded = base64.b64encode(raw)
    if content == b"{}":
        return b'{"data":"' + encoded + b'"}'
    return content[:-1] + b',"data":"' + encoded + b'"}'


def kept_apart(
    rtype: str, resource: dict[str, Any], raw: bytes | None = None
) -> tuple[bytes, bytes | None]:
    """(JSON to keep in the rows, bytes to keep beside them or None) for a resource being
    written; `raw` when the caller already holds the bytes (the resource then lacks data)."""
    if raw is not None:
        return orjson.dumps(resource), raw
    data = resource.get("data") if rtype in SPLIT_TYPES else None
    if isinstance(data, str) and data:
        try:
            decoded = base64.b64decode(data, validate=True)
        except binascii.Error:
            decoded = None  # not plain base64: keep it in the JSON as written
        if decoded is not None:
            return orjson.dumps({k: v for k, v in resource.items() if k != "data"}), decoded
    return orjson.dumps(resource), None
