"""Start-up repair: a document's content tied to its document.

A Binary is read under the rules of the DocumentReference its `securityContext` names
(`access.targets.binary_owner`). Documents filed through ITI-65 or ITI-105 by an earlier
version of the server left their Binaries without one, so under the policy nobody but the
auditor could retrieve them. At start-up, once per store, each live DocumentReference's
Binaries that name no document are given it, in a new version written by the server (the
bytes do not change; the history keeps the version before)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.access.targets import binary_owner
from fhir_server.fhir.compartment import local_id
from fhir_server.interactions.versioning import make_write
from fhir_server.operations.once import run_once
from fhir_server.records import Stored, Write
from fhir_server.storage.port import Store, VersionConflict

DONE_KEY = "contents-tied"


def _binary_ids(document: Stored) -> list[str]:
    contents = (document.resource or {}).get("content") or []
    urls = [((c or {}).get("attachment") or {}).get("url") for c in contents]
    return [bid for url in urls if (bid := local_id(url, "Binary")) is not None]


async def _tie(store: Store, document: Stored, now: str) -> list[Write]:
    writes = []
    for bid in _binary_ids(document):
        binary = await store.read("Binary", bid)
        if binary is None or binary.deleted or await binary_owner(store, binary) is not None:
            continue
        tied = {
            **(binary.resource or {}),
            "securityContext": {"reference": f"DocumentReference/{document.id}"},
        }
        writes.append(make_write("update", "Binary", bid, tied, current=binary, now=now))
    return writes


async def tie_contents(store: Store) -> tuple[int, bool]:
    """Tie every untied content to its document: the number of Binaries tied, and whether
    every document was seen through (one written meanwhile is looked at again next time)."""
    tied, after, complete = 0, None, True
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    while True:
        batch, after = await store.scan("DocumentReference", after=after)
        for document in batch:
            writes = await _tie(store, document, now)
            if writes:
                try:
                    await store.commit(writes)
                except VersionConflict:
                    complete = False  # written meanwhile: the next start looks again
                    continue
                tied += len(writes)
        if after is None:
            return tied, complete


async def tie_contents_once(store: Store) -> int | None:
    """At start-up: the repair, unless this store had it already (None)."""
    return await run_once(store, DONE_KEY, tie_contents, "document contents tied")
