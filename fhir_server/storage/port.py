"""The Store port: what `interactions/` needs from a database, and nothing more.

All writes go through `commit`, which applies a batch atomically: the current row, the
history row, the search index terms and the unique keys of every write in the batch, or
none of them. Preconditions (expected version, uniqueness) are checked by the database
inside that atomic step, never by a read-then-write in the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from fhir_server.storage.binary_data import with_data

WriteKind = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class IndexTerms:
    """Search index terms of one resource version, computed by `search.index` (pure).

    tokens: (param, value) where value is "system|code", "|code" (no system) or "code"
    strings: (param, normalised value: case and accents folded)
    dates: (param, low, high) as ISO-8601 UTC instants, inclusive bounds
    refs: (param, "Type/id")
    patient: logical id of the Patient whose compartment holds the resource (scope / shard key)
    sort: param -> sortable string (ISO instant), for _sort
    """

    tokens: tuple[tuple[str, str], ...] = ()
    strings: tuple[tuple[str, str], ...] = ()
    dates: tuple[tuple[str, str, str], ...] = ()
    refs: tuple[tuple[str, str], ...] = ()
    patient: str | None = None
    sort: tuple[tuple[str, str], ...] = ()


EMPTY_TERMS = IndexTerms()


@dataclass(frozen=True)
class Write:
    """One resource version to record.

    expected_version: for "create", None (the id must be new); for "update"/"delete", the
    version the current row must have (None on update means: must not exist yet, i.e.
    update-as-create); the store raises VersionConflict when it does not hold.
    unique_keys: strings that no other live resource may hold (INS, CDA uniqueId,
    conditional-create condition); the store raises UniqueViolation naming the holder.
    chain: name of a tamper-evident chain to append the resource to (AuditEvents): inside
    the atomic step the store reads the chain head, calls `audit.chain.link(resource,
    head)` and moves the head, so appends are serialised by the database.
    """

    kind: WriteKind
    rtype: str
    id: str
    version: int
    last_updated: str
    resource: dict[str, Any] | None
    expected_version: int | None = None
    index: IndexTerms = EMPTY_TERMS
    unique_keys: tuple[str, ...] = ()
    chain: str | None = None
    # a Binary's bytes when the caller holds them raw (a filed CDA): the resource then has
    # no `data`, and the store serves it with them, without a base64 round trip
    data: bytes | None = None


@dataclass
class Stored:
    """A resource version as the store holds it. `content` is the JSON bytes.

    `data`: a Binary's bytes kept beside the JSON (`json` then lacks the `data` element):
    `content` puts them back as base64 when first asked, a raw read serves them as they are.
    """

    rtype: str
    id: str
    version: int
    last_updated: str
    deleted: bool
    json: bytes | None
    method: str = "PUT"
    _resource: dict[str, Any] | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    _served: bytes | None = field(default=None, repr=False)

    @property
    def content(self) -> bytes | None:
        if self.data is None or self.json is None:
            return self.json
        if self._served is None:
            self._served = with_data(self.json, self.data)
        return self._served

    @property
    def resource(self) -> dict[str, Any] | None:
        if self._resource is None and self.content is not None:
            self._resource = orjson.loads(self.content)
        return self._resource


@dataclass(frozen=True)
class HistoryPage:
    entries: list[Stored]
    # opaque cursor for the next (older) page, or None at the end
    next_cursor: str | None


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

    async def search(self, plan: Any) -> Any:
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
