"""The records every layer shares (pure): a resource version as a store holds it, one to
write, its search index terms, a page of history. They sit below search, FHIR and storage
so that none of those imports another to name them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from fhir_server.fhir.binary_data import with_data

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
