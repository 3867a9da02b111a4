"""The Store port: what `interactions/` needs from a database, and nothing more.

All writes go through `commit`, which applies a batch atomically: the current row, the
history row, the search index terms and the unique keys of every write in the batch, or
none of them. Preconditions (expected version, uniqueness) are checked by the database
inside that atomic step, never by a read-then-write in the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from fhir_server.records import (
    EMPTY_TERMS,
    HistoryPage,
    IndexTerms,
    Stored,
    Write,
    WriteKind,
)

if TYPE_CHECKING:
    from fhir_server.search.plan import SearchPlan, SearchResult

# the records a Store reads and writes are defined below every layer (`fhir_server.records`)
__all__ = [
    "EMPTY_TERMS",
    "HistoryPage",
    "IndexTerms",
    "Stored",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UniqueViolation",
    "VersionConflict",
    "Write",
    "WriteKind",
]


class StoreError(Exception):
    """Base of the errors a Store raises for a caller to map."""


class VersionConflict(StoreError):
    def __init__(self, rtype: str, id: str, expected: int | None, actual: int | None):
        super().__init__(f"{rtype}/{id}: expected version {expected}, found {actual}")
        self.rtype, self.id, self.expected, self.actual = rtype, id, expected, actual


class UniqueViolation(StoreError):
    def __init__(self, key: str, rtype: str, id: str):
        super().__init__(f"unique key {key!r} already held by {rtype}/{id}")
        self.key, self.rtype, self.id = key, rtype, id


class StoreUnavailable(StoreError):
    """The database cannot be reached or timed out: the API answers 503."""


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def commit(self, writes: Sequence[Write]) -> list[Stored]:
        """Apply every write or none; return what was stored, in order."""
        ...

    async def read(self, rtype: str, id: str) -> Stored | None:
        """The current version (possibly a deletion marker), or None if never existed."""
        ...

    async def vread(self, rtype: str, id: str, version: int) -> Stored | None: ...

    async def history(
        self,
        rtype: str | None,
        id: str | None,
        *,
        count: int,
        cursor: str | None = None,
        since: str | None = None,
    ) -> HistoryPage:
        """Versions newest first: of one instance (id), of a type, or of the whole system."""
        ...

    async def holder_of(self, key: str) -> tuple[str, str] | None:
        """(rtype, id) of the live resource holding a unique key, if any."""
        ...

    async def search(self, plan: SearchPlan) -> SearchResult:
        """Run a compiled search plan (see `search.plan`)."""
        ...

    async def chain_events(
        self, chain: str, *, after: int = 0, count: int = 1000
    ) -> list[tuple[int, bytes]]:
        """Members of a chain in append order as (position, JSON bytes), from `after`."""
        ...

    async def chain_head(self, chain: str) -> tuple[int, str] | None:
        """(position, hash) of the last member of a chain."""
        ...

    async def scan(
        self,
        rtype: str,
        *,
        after: str | None = None,
        count: int = 500,
        include_deleted: bool = False,
    ) -> tuple[list[Stored], str | None]:
        """Every live resource of a type (and the deleted ones too, if asked: a record's
        destruction leaves none behind), in batches (operator tasks)."""
        ...

    async def reindex(self, rtype: str, entries: Sequence[tuple[str, int, IndexTerms]]) -> int:
        """Replace the search index terms of current versions, given as (id, version,
        terms); a resource no longer at that version is left as its newer write indexed it.
        Returns how many were replaced (operator task: new search parameters)."""
        ...

    async def meta(self, key: str) -> str | None:
        """A value the server keeps about the store itself (the search index signature)."""
        ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def purge(self, rtype: str, id: str) -> None:
        """Destroy a resource: current row, history, index terms and keys (record
        destruction after the retention period; nothing else may remove history)."""
        ...
