"""`dmp-fhir reindex`: recompute the search index terms of every live resource.

A resource is indexed by the code that writes it. After an upgrade that adds or changes a
search parameter (PDSm `isArchived`, `period-start`...), resources written before it lack
the new terms and a search by that parameter misses them until they are written again.
This rewrites the terms of the current versions, nothing else: no new version, no history
row, no audit (the data is unchanged). Safe beside a running server: a resource written
meanwhile is left as that write indexed it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.search.index import extract_terms
from fhir_server.search.params import params_of
from fhir_server.storage.port import Store, StoreUnavailable

BATCH = 500
SIGNATURE_KEY = "search-index-signature"
# bump when `search.index` changes the terms it makes for the same parameters
INDEX_FORMAT = 2  # 2: one token term per code, the code before its system

log = logging.getLogger("fhir_server.reindex")


def signature_key(rtype: str) -> str:
    return f"{SIGNATURE_KEY}:{rtype}"


def index_signature(rtype: str) -> str:
    """What the terms of a resource of `rtype` depend on: its parameters (their paths and
    options, not their descriptions) and the format of the extraction. Kept per type, so
    that a parameter added to one type reindexes that type alone (AuditEvents, the most
    numerous, are left alone when a DocumentReference parameter is added)."""
    parts = [f"format={INDEX_FORMAT}", f"type={rtype}"]
    parts += [repr(replace(p, description="")) for _, p in sorted(params_of(rtype).items())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass
class ReindexReport:
    # resource type -> resources whose terms were rewritten
    reindexed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.reindexed.values())


async def reindex(
    store: Store,
    types: Iterable[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ReindexReport:
    """Rewrite the index terms of every live resource of `types` (default: all);
    `progress(rtype, n)` after each batch of n resources."""
    report = ReindexReport()
    wanted = list(RESOURCE_TYPES if types is None else types)
    for rtype in wanted:
        if rtype not in RESOURCE_TYPES:
            raise ValueError(f"unknown resource type {rtype!r}")
    for rtype in wanted:
        # no parameter, no terms (Binary): nothing to rewrite, and its bytes stay unread
        found = await _reindex_type(store, rtype, progress) if params_of(rtype) else 0
        report.reindexed[rtype] = found
        # every resource of the type is now indexed as this version indexes
        await store.set_meta(signature_key(rtype), index_signature(rtype))
    return report


async def _reindex_type(
    store: Store, rtype: str, progress: Callable[[str, int], None] | None
) -> int:
    done = 0
    after: str | None = None
    while True:
        batch, after = await store.scan(rtype, after=after, count=BATCH)
        entries = [(s.id, s.version, extract_terms(rtype, s.resource or {})) for s in batch]
        done += await store.reindex(rtype, entries)
        if progress is not None:
            progress(rtype, len(batch))
        if after is None:
            return done


async def reindex_if_stale(store: Store) -> ReindexReport | None:
    """At start-up: reindex the types the store holds as indexed by another version (or by
    one that kept no signature); None when all are current or the store cannot be reached
    (it answers 503 until it can)."""
    try:
        stale = [
            rtype
            for rtype in RESOURCE_TYPES
            if await store.meta(signature_key(rtype)) != index_signature(rtype)
        ]
        if not stale:
            return None
        report = await reindex(store, stale)
    except StoreUnavailable as exc:
        log.warning("search index not checked, the store is unreachable: %s", exc)
        return None
    if report.total:
        log.warning("search index written by another version: %d resources reindexed", report.total)
    return report
