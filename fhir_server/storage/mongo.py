"""The MongoDB store, on PyMongo's native async client (`pymongo.AsyncMongoClient`).

Layout, per resource type `T` (same model as the SQLite adapter):

- `T`: the current version of each resource, `_id` = logical id, with its search index
  terms beside it: `{_id, version, last_updated, deleted, patient, content: Binary(JSON),
  tok: ["param|value"], ref: ["param|Type/id"], str: [{p, v}], date: [{p, lo, hi}]}`;
  `search` (see `mongo_search`) compiles plans against exactly these fields.
- `T_history`: append-only, one document per version, unique on (id, version); type history
  pages newest first on (last_updated, _id) where `_id` is a client-made ObjectId (no global
  counter document: that would serialise every write and be a hot spot once sharded). A
  Binary's bytes are kept raw here only (`data`), not as base64 in either JSON copy
  (`binary_data`); reads of the current version fetch them from this document.
- `unique_keys`: `{key, rtype, id}`, unique on `key` (INS, CDA uniqueId, conditional create).
- `store_meta`: `{_id: key, value}`, what the server keeps about the store (the signature of
  the search index the current documents were indexed with).

Atomicity of `commit`, the guarantee:

- **With transactions** (detected at start-up: a replica set member or a mongos; or forced
  with `transactions=True`): the whole batch (history rows, unique keys, current documents)
  is one multi-document transaction. All or nothing,
  crash or not. Transient write conflicts are retried a few times, then answered as
  StoreUnavailable (503, retry later). A session whose transaction the server refused is
  never used again (see `discard_server_session`).
- **Without transactions** (a standalone server, which includes the mongoeco emulator;
  development only, see docs/scaling.md):
  per write, in this order: (1) insert the history row (its unique (id, version) index
  already refuses a racing writer of the same version), (2) claim the unique keys, (3) write
  the current document with the version precondition in the filter; once every write of the
  batch is in, (4) release the unique keys the new versions no longer hold. Any failure undoes
  steps already done, in reverse (compensation). So a *crash* can never leave a current
  version without its history row, nor a current document carrying a key it does not hold.
  What a crash between steps can leave: a history row for a version that never became current
  (vread of it answers; history lists it) and unique keys claimed for it, or, if step (4)
  did not run, keys that the new version no longer holds (either way they block that key
  until deleted from `unique_keys` by hand); with batches, earlier writes of the batch stay
  applied when the crash hits a later one.
  Readers of current documents never see a half-written resource: each current document is
  one single-document write.

Connection failures and timeouts become StoreUnavailable (HTTP 503). Timeouts are short so a
dead server answers fast; the driver reconnects by itself when the server comes back, and the
start-up steps (indexes, transaction probe) are retried on first use if the server was down
when the app started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import orjson
from bson import Binary, ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)
from pymongo.uri_parser import parse_uri

from fhir_server.audit.chain import GENESIS, link
from fhir_server.fhir import binary_data
from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.search.plan import SearchPlan, SearchResult
from fhir_server.storage import mongo_search
from fhir_server.storage.port import (
    EMPTY_TERMS,
    HistoryPage,
    IndexTerms,
    Stored,
    StoreUnavailable,
    UniqueViolation,
    VersionConflict,
    Write,
)

log = logging.getLogger("fhir_server.storage.mongo")

Doc = dict[str, Any]
Undo = list[Callable[[], Awaitable[Any]]]

# short on purpose: an unreachable server must answer 503 in about two seconds, not thirty
CLIENT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "socketTimeoutMS": 10000,
    "appname": "dmp-fhir",
}
TXN_ATTEMPTS = 12
KEY_RACE_ATTEMPTS = 3
CHAIN_ATTEMPTS = 50
METHODS = {"create": "POST", "update": "PUT", "delete": "DELETE"}
# index terms are only for search: never ship them back on reads
READ_PROJECTION = {"tok": 0, "ref": 0, "str": 0, "date": 0}
UNAVAILABLE = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


@contextlib.contextmanager
def unavailable_as_503() -> Iterator[None]:
    """ConnectionFailure covers AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"MongoDB: {type(exc).__name__}: {exc}") from exc


def is_write_conflict(exc: PyMongoError) -> bool:
    """A transaction lost a race and may simply be rerun. MongoDB labels it; mongoeco answers
    a bare OperationFailure "Write conflict during transaction commit" (no code, no label)."""
    if isinstance(exc, UNAVAILABLE):
        return False  # a dead server is not worth rerunning against: 503 at once
    if exc.has_error_label("TransientTransactionError"):
        return True
    return isinstance(exc, OperationFailure) and (
        exc.code == 112 or "write conflict" in str(exc).lower()
    )


def discard_server_session(session: AsyncClientSession) -> None:
    """Keep the driver from reusing this session's id (lsid) once its transaction failed.
    MongoDB aborts a transaction whose commit it refuses, and the driver then pools the lsid
    for later operations; mongoeco leaves the refused transaction open on it, so every later
    read or write sent with that lsid would run inside it: reads would see its writes, never
    committed, and a rerun would collide with them (scripts/mongoeco_refused_commit.py). The
    driver discards an lsid so after a network error; the next one is made client-side."""
    server_session = getattr(session, "_server_session", None)
    if server_session is not None:
        server_session.mark_dirty()


class _KeyTaken(Exception):
    """A unique key is held by someone else; the holder is looked up outside the write."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def database_name(uri: str, default: str) -> str:
    """The database named in the URI path wins over the setting (as MongoDB tools do)."""
    return parse_uri(uri, validate=False).get("database") or default


def current_doc(w: Write, content: bytes | None) -> Doc:
    deleted = w.kind == "delete"
    return {
        "_id": w.id,
        "version": w.version,
        "last_updated": w.last_updated,
        "deleted": deleted,
        "content": None if content is None else Binary(content),
        **term_fields(EMPTY_TERMS if deleted else w.index),
    }


def term_fields(terms: IndexTerms) -> Doc:
    """The fields of a current document that search reads."""
    return {
        "patient": terms.patient,
        "tok": [f"{p}|{v}" for p, v in terms.tokens],
        "ref": [f"{p}|{v}" for p, v in terms.refs],
        "str": [{"p": p, "v": v} for p, v in terms.strings],
        "date": [{"p": p, "lo": lo, "hi": hi} for p, lo, hi in terms.dates],
        # per sortable date param its lowest instant ("" when absent): _sort keys
        "sort": dict(terms.sort),
    }


def history_doc(w: Write, content: bytes | None, raw: bytes | None = None) -> Doc:
    doc = {
        "_id": ObjectId(),
        "id": w.id,
        "version": w.version,
        "last_updated": w.last_updated,
        "deleted": w.kind == "delete",
        "method": METHODS[w.kind],
        "content": None if content is None else Binary(content),
    }
    if raw is not None:  # a Binary's bytes, kept once: in its version's history document
        doc["data"] = Binary(raw)
    return doc


def stored_from(rtype: str, doc: Doc, id_field: str = "_id") -> Stored:
    content = doc.get("content")
    data = doc.get("data")
    return Stored(
        rtype,
        doc[id_field],
        doc["version"],
        doc["last_updated"],
        bool(doc["deleted"]),
        None if content is None else bytes(content),
        doc.get("method", "PUT"),
        data=None if data is None else bytes(data),
    )


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """Opaque paging cursor back to its values; anything malformed is a ValueError."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t for v, t in zip(values, types, strict=True))
    ):
        raise ValueError(f"invalid cursor {cursor!r}")
    return values


def current_indexes() -> list[IndexModel]:
    # one per hot query: patient compartment by date, token/reference/string/date search;
    # (patient, tok): a record's search by token reads its matches only, not the record
    return [
        IndexModel([("patient", ASCENDING), ("last_updated", DESCENDING)]),
        IndexModel([("patient", ASCENDING), ("tok", ASCENDING)]),
        IndexModel([("tok", ASCENDING)]),
        IndexModel([("ref", ASCENDING)]),
        IndexModel([("date.p", ASCENDING), ("date.lo", ASCENDING)]),
        IndexModel([("date.p", ASCENDING), ("date.hi", ASCENDING)]),
        IndexModel([("str.p", ASCENDING), ("str.v", ASCENDING)]),
        IndexModel([("last_updated", ASCENDING)]),
    ]


def history_indexes() -> list[IndexModel]:
    return [
        IndexModel([("id", ASCENDING), ("version", ASCENDING)], unique=True),
        IndexModel([("last_updated", DESCENDING), ("_id", DESCENDING)]),
    ]


def key_indexes() -> list[IndexModel]:
    return [
        IndexModel([("key", ASCENDING)], unique=True),
        IndexModel([("rtype", ASCENDING), ("id", ASCENDING)]),
    ]


class MongoStore:
    def __init__(
        self,
        uri: str,
        db: str = "dmp",
        *,
        transactions: bool | None = None,
        client_options: dict[str, Any] | None = None,
    ):
        """`transactions`: None detects support at start-up; True/False forces a mode."""
        self.uri = uri
        self.db_name = database_name(uri, db)
        self.transactions = transactions
        self._options = {**CLIENT_OPTIONS, **(client_options or {})}
        self._client: AsyncMongoClient[Doc] | None = None
        self._ready = False
        self._ready_lock: asyncio.Lock | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def db(self) -> AsyncDatabase[Doc]:
        assert self._client is not None, "store not open"
        return self._client[self.db_name]

    def _cur(self, rtype: str) -> AsyncCollection[Doc]:
        return self.db[rtype]

    def _hist(self, rtype: str) -> AsyncCollection[Doc]:
        return self.db[f"{rtype}_history"]

    @property
    def _keys(self) -> AsyncCollection[Doc]:
        return self.db["unique_keys"]

    async def open(self) -> None:
        # the client is bound to the running event loop, so it is made here, not in __init__
        self._client = AsyncMongoClient(self.uri, **self._options)
        self._ready_lock = asyncio.Lock()
        try:
            await self._ensure_ready()
        except StoreUnavailable as exc:
            # start anyway: requests answer 503 until the server is back, then set-up runs
            log.warning("MongoDB not reachable at start-up, will retry on use: %s", exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ping(self) -> bool:
        try:
            await self._ensure_ready()
            await self.db.command("ping")
            return True
        except (StoreUnavailable, PyMongoError):
            return False

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        assert self._ready_lock is not None, "store not open"
        async with self._ready_lock:
            if self._ready:
                return
            with unavailable_as_503():
                await self._create_indexes()
                if self.transactions is None:
                    self.transactions = await self._supports_transactions()
            log.info(
                "MongoDB store ready (db=%s, transactions=%s)", self.db_name, self.transactions
            )
            self._ready = True

    async def _create_indexes(self) -> None:
        # createIndexes is idempotent for identical specs: safe at every start-up
        await self._keys.create_indexes(key_indexes())
        for rtype in RESOURCE_TYPES:
            await self._cur(rtype).create_indexes(current_indexes())
            await self._hist(rtype).create_indexes(history_indexes())

    async def _supports_transactions(self) -> bool:
        # only where MongoDB guarantees them: a replica set member or a mongos. A server that
        # calls itself standalone gets ordered writes, even if it accepts transactions (the
        # mongoeco emulator does, but keeps a refused commit's transaction open on its
        # session: `discard_server_session`)
        hello = await self.db.command("hello")
        return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"

    # -- writes ------------------------------------------------------------------------

    async def commit(self, writes: Sequence[Write]) -> list[Stored]:
        await self._ensure_ready()
        for _ in range(KEY_RACE_ATTEMPTS):
            try:
                with unavailable_as_503():
                    if self.transactions:
                        return await self._commit_in_transaction(writes)
                    return await self._commit_ordered(writes)
            except _KeyTaken as taken:
                holder = await self.holder_of(taken.key)
                if holder is not None:
                    raise UniqueViolation(taken.key, *holder) from None
                # the holder let go between our claim and the look-up: the key may be free now
        raise StoreUnavailable("MongoDB: a unique key kept changing hands; retry")

    async def _commit_in_transaction(self, writes: Sequence[Write]) -> list[Stored]:
        assert self._client is not None
        for attempt in range(TXN_ATTEMPTS):
            try:
                async with self._client.start_session() as session:
                    try:
                        async with await session.start_transaction():
                            stored = [await self._apply(w, session, []) for w in writes]
                            await self._release_keys(writes, session)
                    except PyMongoError:
                        discard_server_session(session)
                        raise
                return stored
            except PyMongoError as exc:
                # a write conflict with another transaction: rerun, the preconditions then
                # tell a real conflict (VersionConflict) from a mere overlap
                if not is_write_conflict(exc):
                    raise
                log.debug("transaction attempt %d conflicted, rerunning: %s", attempt, exc)
            await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
        raise StoreUnavailable("MongoDB: transaction kept conflicting with concurrent writes")

    async def _commit_ordered(self, writes: Sequence[Write]) -> list[Stored]:
        """Without transactions: reserve every unique key of the batch first (a concurrent
        batch that would clash fails before writing anything), then the resources, then
        the audit-chain appends last (undoing an append would cut the chain)."""
        undo: Undo = []
        order = sorted(range(len(writes)), key=lambda i: writes[i].chain is not None)
        stored: dict[int, Stored] = {}
        try:
            for w in writes:
                await self._claim_keys(w, None, undo)
            for i in order:
                stored[i] = await self._apply(writes[i], None, undo, keys=False)
        except BaseException:
            await self._compensate(undo)
            raise
        try:
            await self._release_keys(writes, None)
        except PyMongoError:
            # the resources are written and visible: report success, not a 503 that would make
            # the client retry a write that landed; the keys left over are listed in the doc
            log.exception("MongoDB: could not release unique keys no longer held")
        return [stored[i] for i in range(len(writes))]

    async def _compensate(self, undo: Undo) -> None:
        for step in reversed(undo):
            try:
                await step()
            except PyMongoError:
                # the server went away mid-write: what is left is what the module doc lists
                log.exception("MongoDB: could not undo a partial write")

    async def _apply(
        self, w: Write, session: AsyncClientSession | None, undo: Undo, *, keys: bool = True
    ) -> Stored:
        if w.chain is not None and w.resource is not None:
            w = replace(w, resource=await self._link(w, session, undo))
        content, raw = (
            binary_data.kept_apart(w.rtype, w.resource, w.data)
            if w.resource is not None
            else (None, None)
        )
        await self._insert_history(w, content, session, undo, raw)
        if keys:
            await self._claim_keys(w, session, undo)
        await self._write_current(w, content, session, undo)
        method = METHODS[w.kind]
        return Stored(
            w.rtype,
            w.id,
            w.version,
            w.last_updated,
            w.kind == "delete",
            content,
            method,
            w.resource if w.data is None else None,  # without its data: rebuilt when asked
            data=raw,
        )

    async def _link(self, w: Write, session: AsyncClientSession | None, undo: Undo) -> Doc:
        """Append to a tamper-evident chain: move the chain head by compare-and-set (two
        appends can never claim the same predecessor), then record the member. A crash
        between the two leaves a head without its event, which `verify-audit` reports as
        missing: detected, never silent."""
        assert w.chain is not None and w.resource is not None
        heads, members = self.db["chain_head"], self.db["chain_member"]
        for _ in range(CHAIN_ATTEMPTS):
            head = await heads.find_one({"_id": w.chain}, session=session)
            position, previous = (head["position"], head["hash"]) if head else (0, GENESIS)
            linked, digest = link(w.resource, previous)
            moved = {"_id": w.chain, "position": position + 1, "hash": digest}
            try:
                if head is None:
                    await heads.insert_one(moved, session=session)
                else:
                    res = await heads.replace_one(
                        {"_id": w.chain, "position": position, "hash": previous},
                        moved,
                        session=session,
                    )
                    if res.modified_count == 0:
                        continue  # another append moved the head first
            except DuplicateKeyError:
                continue
            undo.append(
                functools.partial(
                    heads.replace_one, moved, {**moved, "position": position, "hash": previous}
                )
            )
            member = {"chain": w.chain, "position": position + 1, "rtype": w.rtype, "id": w.id}
            await members.insert_one(member, session=session)
            undo.append(
                functools.partial(members.delete_one, {"chain": w.chain, "position": position + 1})
            )
            return linked
        raise StoreUnavailable("MongoDB: the audit chain head kept moving; retry")

    async def _insert_history(
        self,
        w: Write,
        content: bytes | None,
        session: AsyncClientSession | None,
        undo: Undo,
        raw: bytes | None = None,
    ) -> None:
        doc = history_doc(w, content, raw)
        hist = self._hist(w.rtype)
        try:
            await hist.insert_one(doc, session=session)
        except DuplicateKeyError:
            # (id, version) exists: someone else wrote this version first
            raise await self._conflict(w) from None
        undo.append(functools.partial(hist.delete_one, {"_id": doc["_id"]}))

    async def _claim_keys(self, w: Write, session: AsyncClientSession | None, undo: Undo) -> None:
        if w.kind == "delete":
            return
        for key in w.unique_keys:
            # matches when this resource already holds the key; inserts when free; a holder
            # that is someone else makes the insert hit the unique index
            try:
                res = await self._keys.update_one(
                    {"key": key, "rtype": w.rtype, "id": w.id},
                    {"$setOnInsert": {"key": key, "rtype": w.rtype, "id": w.id}},
                    upsert=True,
                    session=session,
                )
            except DuplicateKeyError:
                raise _KeyTaken(key) from None
            if res.upserted_id is not None:
                undo.append(functools.partial(self._keys.delete_one, {"_id": res.upserted_id}))

    async def _write_current(
        self, w: Write, content: bytes | None, session: AsyncClientSession | None, undo: Undo
    ) -> None:
        doc = current_doc(w, content)
        cur = self._cur(w.rtype)
        if w.kind == "create" or w.expected_version is None:
            try:
                await cur.insert_one(doc, session=session)
            except DuplicateKeyError:
                raise await self._conflict(w) from None
            undo.append(functools.partial(cur.delete_one, {"_id": w.id, "version": w.version}))
            return
        # the optimistic lock: only the expected version is replaced
        before = await cur.find_one_and_replace(
            {"_id": w.id, "version": w.expected_version}, doc, session=session
        )
        if before is None:
            raise await self._conflict(w)
        undo.append(functools.partial(cur.replace_one, {"_id": w.id, "version": w.version}, before))

    async def _release_keys(
        self, writes: Sequence[Write], session: AsyncClientSession | None
    ) -> None:
        for w in writes:
            kept = [] if w.kind == "delete" else list(w.unique_keys)
            await self._keys.delete_many(
                {"rtype": w.rtype, "id": w.id, "key": {"$nin": kept}}, session=session
            )

    async def _conflict(self, w: Write) -> VersionConflict:
        # read outside any session: inside a transaction that just failed, nothing more runs
        doc = await self._cur(w.rtype).find_one({"_id": w.id}, {"version": 1})
        expected = None if w.kind == "create" else w.expected_version
        return VersionConflict(w.rtype, w.id, expected, doc["version"] if doc else None)

    # -- reads -------------------------------------------------------------------------

    async def read(self, rtype: str, id: str) -> Stored | None:
        await self._ensure_ready()
        with unavailable_as_503():
            doc = await self._cur(rtype).find_one({"_id": id}, READ_PROJECTION)
            if doc is None:
                return None
            return (await self._with_data(rtype, [stored_from(rtype, doc)]))[0]

    async def vread(self, rtype: str, id: str, version: int) -> Stored | None:
        await self._ensure_ready()
        with unavailable_as_503():
            doc = await self._hist(rtype).find_one({"id": id, "version": version})
        return None if doc is None else stored_from(rtype, doc, "id")

    async def history(
        self,
        rtype: str | None,
        id: str | None,
        *,
        count: int,
        cursor: str | None = None,
        since: str | None = None,
    ) -> HistoryPage:
        if rtype is None:
            raise NotImplementedError("system-level history is not supported")
        await self._ensure_ready()
        filt, sort = history_query(id, cursor, since)
        with unavailable_as_503():
            docs = await self._hist(rtype).find(filt).sort(sort).limit(count + 1).to_list()
        more = len(docs) > count
        docs = docs[:count]
        entries = [stored_from(rtype, d, "id") for d in docs]
        next_cursor = history_cursor(id, docs[-1]) if more and docs else None
        return HistoryPage(entries, next_cursor)

    async def holder_of(self, key: str) -> tuple[str, str] | None:
        await self._ensure_ready()
        with unavailable_as_503():
            doc = await self._keys.find_one({"key": key})
        return (doc["rtype"], doc["id"]) if doc else None

    async def chain_events(
        self, chain: str, *, after: int = 0, count: int = 1000
    ) -> list[tuple[int, bytes]]:
        await self._ensure_ready()
        out = []
        with unavailable_as_503():
            members = await (
                self.db["chain_member"]
                .find({"chain": chain, "position": {"$gt": after}})
                .sort("position", ASCENDING)
                .limit(count)
                .to_list()
            )
            for m in members:
                served = await self._cur(m["rtype"]).find_one({"_id": m["id"]}, {"content": 1})
                kept = await self._hist(m["rtype"]).find_one(
                    {"id": m["id"], "version": 1}, {"content": 1}
                )
                out.append((m["position"], one_copy(served, kept)))
        return out

    async def chain_head(self, chain: str) -> tuple[int, str] | None:
        await self._ensure_ready()
        with unavailable_as_503():
            head = await self.db["chain_head"].find_one({"_id": chain})
        return (head["position"], head["hash"]) if head else None

    async def scan(
        self,
        rtype: str,
        *,
        after: str | None = None,
        count: int = 500,
        include_deleted: bool = False,
    ) -> tuple[list[Stored], str | None]:
        await self._ensure_ready()
        filt: Doc = {} if include_deleted else {"deleted": False}
        if after is not None:
            filt["_id"] = {"$gt": after}
        with unavailable_as_503():
            docs = (
                await self._cur(rtype)
                .find(filt, READ_PROJECTION)
                .sort("_id", ASCENDING)
                .limit(count)
                .to_list()
            )
        entries = await self._with_data(rtype, [stored_from(rtype, d) for d in docs])
        return entries, (docs[-1]["_id"] if len(docs) == count else None)

    async def reindex(self, rtype: str, entries: Sequence[tuple[str, int, IndexTerms]]) -> int:
        await self._ensure_ready()
        if not entries:
            return 0
        updates = [
            UpdateOne(
                {"_id": id, "version": version, "deleted": False},
                {"$set": term_fields(terms)},
            )
            for id, version, terms in entries
        ]
        with unavailable_as_503():
            result = await self._cur(rtype).bulk_write(updates, ordered=False)
        return result.matched_count

    async def meta(self, key: str) -> str | None:
        await self._ensure_ready()
        with unavailable_as_503():
            doc = await self.db["store_meta"].find_one({"_id": key})
        return None if doc is None else str(doc["value"])

    async def set_meta(self, key: str, value: str) -> None:
        await self._ensure_ready()
        with unavailable_as_503():
            await self.db["store_meta"].update_one(
                {"_id": key}, {"$set": {"value": value}}, upsert=True
            )

    async def purge(self, rtype: str, id: str) -> None:
        await self._ensure_ready()
        with unavailable_as_503():
            await self._cur(rtype).delete_one({"_id": id})
            await self._hist(rtype).delete_many({"id": id})
            await self._keys.delete_many({"rtype": rtype, "id": id})

    async def search(self, plan: SearchPlan) -> SearchResult:
        await self._ensure_ready()
        with unavailable_as_503():
            result = await mongo_search.search(self._cur, plan)
            await self._with_data(plan.rtype, result.entries)
            for rtype in {s.rtype for s in result.included}:
                await self._with_data(rtype, [s for s in result.included if s.rtype == rtype])
            return result

    async def _with_data(self, rtype: str, entries: list[Stored]) -> list[Stored]:
        """Current documents of a Binary lack its bytes: they are in its version's history
        document (written once); fetch them for the entries that have none."""
        wanted = [s for s in entries if s.data is None and s.json is not None]
        if rtype not in binary_data.SPLIT_TYPES or not wanted:
            return entries
        versions = [{"id": s.id, "version": s.version} for s in wanted]
        docs = (
            await self._hist(rtype)
            .find({"$or": versions, "data": {"$exists": True}}, {"id": 1, "version": 1, "data": 1})
            .to_list()
        )
        found = {(d["id"], d["version"]): bytes(d["data"]) for d in docs}
        for s in wanted:
            s.data = found.get((s.id, s.version))
        return entries


def one_copy(served: Doc | None, kept: Doc | None) -> bytes:
    """A chain member as served and as kept in history: the same bytes, else a copy
    marked as diverging so that verification fails."""
    if served is None or kept is None or served.get("content") is None:
        return b"null"
    if bytes(served["content"]) != bytes(kept.get("content") or b""):
        return orjson.dumps({**orjson.loads(bytes(served["content"])), "_diverging_copies": True})
    return bytes(served["content"])


def history_query(
    id: str | None, cursor: str | None, since: str | None
) -> tuple[Doc, list[tuple[str, int]]]:
    """Instance history pages on version (exact order); type history on (last_updated, _id)."""
    clauses: list[Doc] = []
    if since is not None:
        clauses.append({"last_updated": {"$gte": since}})
    if id is not None:
        clauses.append({"id": id})
        if cursor is not None:
            [version] = decode_cursor(cursor, (int,))
            clauses.append({"version": {"$lt": version}})
        sort = [("version", DESCENDING)]
    else:
        if cursor is not None:
            last_updated, oid = decode_cursor(cursor, (str, str))
            if not ObjectId.is_valid(oid):
                raise ValueError(f"invalid cursor {cursor!r}")
            clauses.append(
                {
                    "$or": [
                        {"last_updated": {"$lt": last_updated}},
                        {"last_updated": last_updated, "_id": {"$lt": ObjectId(oid)}},
                    ]
                }
            )
        sort = [("last_updated", DESCENDING), ("_id", DESCENDING)]
    return ({"$and": clauses} if clauses else {}), sort


def history_cursor(id: str | None, last: Doc) -> str:
    if id is not None:
        return encode_cursor([last["version"]])
    return encode_cursor([last["last_updated"], str(last["_id"])])
