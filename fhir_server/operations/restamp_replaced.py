"""Start-up repair: the data of documents replaced before its status was a fact of it.

A replaced document's structured content leaves the default view of searches through the
`document-status` fact its derived resources carry (`fhir.derived`). Those derived from a
document superseded by an earlier version of the server lack it, and would stay in view.
At start-up, once per store, each superseded document's derived resources are restamped
with its facts, in a new version written by the server (the content does not change)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.access.derived import derived_of
from fhir_server.fhir.derived import restamp
from fhir_server.interactions.versioning import make_write
from fhir_server.operations.once import run_once
from fhir_server.records import Stored, Write
from fhir_server.search.parse import parse_query
from fhir_server.storage.port import Store, VersionConflict

DONE_KEY = "replaced-restamped"
PAGE = 500


async def _restamped(store: Store, document: Stored, now: str) -> list[Write]:
    writes = []
    for stored in await derived_of(store, document.id):
        current = stored.resource or {}
        updated = restamp(current, document.resource or {})
        if updated != current:
            writes.append(
                make_write("update", stored.rtype, stored.id, updated, current=stored, now=now)
            )
    return writes


async def restamp_replaced(store: Store) -> tuple[int, bool]:
    """Restamp the data of every superseded document: the number of resources rewritten,
    and whether every document was seen through (one written meanwhile: next start)."""
    count, complete, cursor = 0, True, None
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    while True:
        query = [("status", "superseded"), *([("_cursor", cursor)] if cursor else [])]
        result = await store.search(
            parse_query("DocumentReference", query, default_count=PAGE, max_count=PAGE)
        )
        for document in result.entries:
            writes = await _restamped(store, document, now)
            if not writes:
                continue
            try:
                await store.commit(writes)
            except VersionConflict:
                complete = False
                continue
            count += len(writes)
        cursor = result.next_cursor
        if cursor is None:
            return count, complete


async def restamp_replaced_once(store: Store) -> int | None:
    """At start-up: the repair, unless this store had it already (None)."""
    return await run_once(store, DONE_KEY, restamp_replaced, "data of replaced documents")
