"""Tamper-evident chain of AuditEvents.

Each event carries two extensions (valueString, lowercase hex SHA-256):

- `https://dmp-fhir.invalid/StructureDefinition/audit-chain-previous`: the hash of the
  previous event of the chain (`GENESIS`, 64 zeros, for the first);
- `https://dmp-fhir.invalid/StructureDefinition/audit-chain-hash`: this event's hash.

hash = SHA-256 of the canonical JSON (orjson, keys sorted, no whitespace) of the event
**without** its `-hash` extension and without `meta` (versionId / lastUpdated are set by the
store after hashing). The `-previous` extension, the id and everything else are covered, so
editing any field, deleting an event or swapping two events breaks the chain. Assign the
event's id before linking. Appends must be serialised (one writer, or a compare-and-set on
the chain head) or two events would claim the same predecessor; verification would then
report the second as "reordered".

A chain cannot prove its own tail was not cut: keep the head hash elsewhere (for instance
in the store's metadata or a log line) and pass it as `expected_head`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from fhir_server.fhir.extensions import CHAIN_HASH_URL, CHAIN_PREVIOUS_URL

PREVIOUS_URL = CHAIN_PREVIOUS_URL
HASH_URL = CHAIN_HASH_URL
GENESIS = "0" * 64
_CHAIN_URLS = (PREVIOUS_URL, HASH_URL)


def _without_chain(event: dict[str, Any], keep_previous: bool) -> dict[str, Any]:
    drop = {HASH_URL} if keep_previous else set(_CHAIN_URLS)
    body = {k: v for k, v in event.items() if k != "meta"}
    extensions = [e for e in event.get("extension", []) if e.get("url") not in drop]
    if extensions:
        body["extension"] = extensions
    else:
        body.pop("extension", None)
    return body


def event_hash(event: dict[str, Any]) -> str:
    """The hash of an event as chained (its `-previous` included, its `-hash` excluded)."""
    canonical = orjson.dumps(_without_chain(event, keep_previous=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _extension(event: dict[str, Any], url: str) -> str | None:
    return next(
        (e.get("valueString") for e in event.get("extension", []) if e.get("url") == url), None
    )


def link(event: dict[str, Any], previous_hash: str) -> tuple[dict[str, Any], str]:
    """Return (a copy of `event` carrying the chain extensions, its hash)."""
    body = _without_chain(event, keep_previous=False)
    body["extension"] = [
        *body.get("extension", []),
        {"url": PREVIOUS_URL, "valueString": previous_hash},
    ]
    digest = event_hash(body)
    body["extension"].append({"url": HASH_URL, "valueString": digest})
    return body, digest


Reason = Literal["altered", "missing", "reordered", "unchained"]


@dataclass(frozen=True)
class ChainBreak:
    """The first place the chain does not hold: `index` in the list given (len(events)
    when the tail is missing), a reason, and a human explanation."""

    index: int
    reason: Reason
    detail: str


def verify_chain(
    events: Sequence[dict[str, Any]],
    start_hash: str = GENESIS,
    expected_head: str | None = None,
) -> ChainBreak | None:
    """Check events in chain order (oldest first). `start_hash`: the predecessor of
    events[0] (GENESIS for a whole chain, else the hash before the segment)."""
    hashes = [_extension(e, HASH_URL) for e in events]
    positions = {h: i for i, h in enumerate(hashes) if h}
    expected_previous = start_hash
    for i, event in enumerate(events):
        stored, previous = hashes[i], _extension(event, PREVIOUS_URL)
        if stored is None or previous is None:
            return ChainBreak(i, "unchained", "the event carries no chain extensions")
        if event_hash(event) != stored:
            return ChainBreak(i, "altered", "the event's content does not match its hash")
        if previous != expected_previous:
            return _link_break(i, previous, expected_previous, positions)
        expected_previous = stored
    if expected_head is not None and expected_previous != expected_head:
        return ChainBreak(len(events), "missing", "the chain ends before the recorded head")
    return None


def _link_break(i: int, previous: str, expected: str, positions: dict[str, int]) -> ChainBreak:
    # The expected predecessor `expected` (the event before) is never after i; if this
    # event's recorded predecessor sits later in the list, events were swapped.
    if positions.get(previous, -1) > i:
        return ChainBreak(i, "reordered", "the event is not in its chain position")
    # Not in the list at all: deleted, or edited and re-hashed (indistinguishable here).
    return ChainBreak(
        i, "missing", "the event's predecessor is absent (deleted, or edited and re-hashed)"
    )
