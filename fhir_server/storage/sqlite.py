"""The embedded store: stdlib sqlite3 in WAL mode.

One writer connection serialises every commit (BEGIN IMMEDIATE, group commit: see
`sqlite_writer`), so preconditions and unique keys are checked inside the transaction that
writes; readers use per-thread connections and never block the writer (WAL). Per resource
type: a current table, an append-only history table and the index tables that search
compiles against.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from fhir_server.audit.chain import GENESIS, link
from fhir_server.fhir import binary_data
from fhir_server.fhir.numbers import whole_number
from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.storage import sqlite_search
from fhir_server.storage.port import (
    HistoryPage,
    IndexTerms,
    Stored,
    StoreUnavailable,
    UniqueViolation,
    VersionConflict,
    Write,
)
from fhir_server.storage.sqlite_segments import Location, Segments
from fhir_server.storage.sqlite_writer import (
    BACKSTOP_CHECKPOINT_PAGES,
    Checkpointer,
    GroupWriter,
    WalSyncer,
)

T = TypeVar("T")

# Bytes per database page, for new stores: SQLite's default. Larger pages write a filed CDA
# in fewer WAL frames, but every audited read commits a small AuditEvent that touches a
# dozen or so B-tree leaves, each a whole page: reads, which outnumber filings in the DMP,
# lose more than filings gain (benchmarks/RESULTS.md, "4 KiB database pages").
PAGE_SIZE = 4096


def _row_cursor(cursor: str) -> int:
    """A history paging cursor (a row number) from a client; ValueError if it is not one."""
    value = whole_number(cursor)
    if value is None:
        raise ValueError(f"invalid cursor {cursor!r}")
    return value


def _one_copy(served: Any, kept: Any) -> bytes:
    """A chain member as served (current row) and as kept (first history row): they must
    be the same bytes; when not, a copy marked as diverging, so verification fails."""
    if served is None or kept is None:
        return b"null"
    if served[0] != kept[0]:
        return orjson.dumps({**orjson.loads(served[0]), "_diverging_copies": True})
    return served[0]


# A token term keyed by (term, patient, rid), `patient` the row's compartment owner ("" when
# none): a search by term reads one key range, and a search of one record by term the range
# of that record's matches within it, not every row of the record. The record in the key
# rather than in a second index: the same two B-trees per term (this and the rid index).
TOKEN_TABLE = """CREATE TABLE IF NOT EXISTS "{name}" (
    term TEXT NOT NULL, patient TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (term, patient, rid)) WITHOUT ROWID"""


def token_table_upgrade(conn: sqlite3.Connection, rtype: str) -> list[str]:
    """The statements that rebuild a token table keyed by (term, rid) alone, as earlier
    versions made it, with the record of each row in its key; [] when there is none."""
    t = f"{rtype}_token"
    columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{t}")')]
    if not columns or "patient" in columns:
        return []
    return [
        TOKEN_TABLE.format(name=f"{t}_rebuilt"),
        f'INSERT INTO "{t}_rebuilt" (term, patient, rid) '
        f"SELECT k.term, COALESCE(r.patient, ''), k.rid "
        f'FROM "{t}" k LEFT JOIN "{rtype}" r ON r.rid = k.rid',
        f'DROP TABLE "{t}"',  # and its rid index, made again by `table_ddl`
        f'ALTER TABLE "{t}_rebuilt" RENAME TO "{t}"',
    ]


def table_ddl(rtype: str) -> list[str]:
    t = rtype
    return [
        f"""CREATE TABLE IF NOT EXISTS "{t}" (
            rid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            version INTEGER NOT NULL,
            last_updated TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            patient TEXT,
            content BLOB)""",
        f'CREATE INDEX IF NOT EXISTS "{t}_patient" ON "{t}"(patient, last_updated)',
        f'CREATE INDEX IF NOT EXISTS "{t}_lastupdated" ON "{t}"(last_updated, id)',
        # seq: the row id, without AUTOINCREMENT (which updated sqlite_sequence on every
        # insert); rows are only deleted with their record, so a reused seq orders right
        f"""CREATE TABLE IF NOT EXISTS "{t}_history" (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            last_updated TEXT NOT NULL,
            deleted INTEGER NOT NULL,
            method TEXT NOT NULL,
            content BLOB,
            UNIQUE(id, version))""",
        # index terms: tokens and references as "param|value" terms, strings and dates typed
        TOKEN_TABLE.format(name=f"{t}_token"),
        f'CREATE INDEX IF NOT EXISTS "{t}_token_rid" ON "{t}_token"(rid)',
        f"""CREATE TABLE IF NOT EXISTS "{t}_ref" (
            term TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY(term, rid)) WITHOUT ROWID""",
        f'CREATE INDEX IF NOT EXISTS "{t}_ref_rid" ON "{t}_ref"(rid)',
        f"""CREATE TABLE IF NOT EXISTS "{t}_string" (
            param TEXT NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL)""",
        f'CREATE INDEX IF NOT EXISTS "{t}_string_pv" ON "{t}_string"(param, value, rid)',
        # covering (rid, ...) indexes: the EXISTS probes of a patient-scoped search
        f'CREATE INDEX IF NOT EXISTS "{t}_string_rpv" ON "{t}_string"(rid, param, value)',
        # keyed by (rid, param, low, high): the covering key of a patient-scoped search's
        # EXISTS probes is the table itself, one B-tree less per write than a row table
        # with that index (stores made before keep theirs: queries read both alike)
        f"""CREATE TABLE IF NOT EXISTS "{t}_date" (
            rid INTEGER NOT NULL, param TEXT NOT NULL, low TEXT NOT NULL, high TEXT NOT NULL,
            PRIMARY KEY (rid, param, low, high)) WITHOUT ROWID""",
        f'CREATE INDEX IF NOT EXISTS "{t}_date_low" ON "{t}_date"(param, low, rid)',
        f'CREATE INDEX IF NOT EXISTS "{t}_date_high" ON "{t}_date"(param, high, rid)',
    ]


COMMON_DDL = [
    """CREATE TABLE IF NOT EXISTS unique_keys (
        key TEXT PRIMARY KEY, rtype TEXT NOT NULL, id TEXT NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS unique_keys_holder ON unique_keys(rtype, id)",
    # tamper-evident chains (audit): head per chain, members in append order
    """CREATE TABLE IF NOT EXISTS chain_head (
        name TEXT PRIMARY KEY, position INTEGER NOT NULL, hash TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS chain_member (
        name TEXT NOT NULL, position INTEGER NOT NULL, rtype TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (name, position)) WITHOUT ROWID""",
    # what the server keeps about the store itself (the search index signature)
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # a Binary's bytes, raw and once per version (current and history rows share them):
    # where they are in the segment files (see `sqlite_segments`) ...
    """CREATE TABLE IF NOT EXISTS resource_file (
        rtype TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
        segment TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
        UNIQUE (rtype, id, version))""",
    # ... or the bytes themselves: an in-memory store, and versions written before segments
    """CREATE TABLE IF NOT EXISTS resource_data (
        rtype TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL,
        UNIQUE (rtype, id, version))""",
]

# what a write's kept-aside bytes became before its group: (JSON without them, the bytes,
# where they were written)
Placed = tuple[bytes, bytes, Location]


def hydrate(
    conn: sqlite3.Connection, entries: list[Stored], segments: Segments | None
) -> list[Stored]:
    """Put kept-aside data back into the JSON of the entries that have some."""
    for s in entries:
        if s.rtype in binary_data.SPLIT_TYPES and s.json is not None:
            if segments is not None:
                where = conn.execute(
                    "SELECT segment, offset, length FROM resource_file "
                    "WHERE rtype = ? AND id = ? AND version = ?",
                    (s.rtype, s.id, s.version),
                ).fetchone()
                if where is not None:
                    s.data = segments.read(Location(*where))
                    continue
            row = conn.execute(
                "SELECT data FROM resource_data WHERE rtype = ? AND id = ? AND version = ?",
                (s.rtype, s.id, s.version),
            ).fetchone()
            if row is not None:
                s.data = row[0]
    return entries


INDEX_TABLES = ("token", "ref", "string", "date")


class SqliteStore:
    def __init__(self, path: Path | str, *, synchronous: str = "FULL", readers: int = 4):
        self.path = str(path)
        self.synchronous = synchronous
        self._reader_exec = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        in_memory = self.path == ":memory:" or self.path.startswith("file:")
        self._writes = GroupWriter(None if in_memory else self.path + "-writer.lock")
        # FULL: the WAL is synced by `WalSyncer` after each COMMIT, outside the write lock
        self._syncs_wal = synchronous == "FULL" and not in_memory
        self._pragma_synchronous = "NORMAL" if self._syncs_wal else synchronous
        self._all_conns: list[sqlite3.Connection] = []
        self._segments = None if in_memory else Segments(Path(self.path + "-documents"))
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = self._open_connection()
        with self._lock:
            self._all_conns.append(conn)
        return conn

    def _open_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # takes effect when the file is created (a WAL database keeps its page size)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._pragma_synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_exec, self._guard, fn)

    def _point(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A lookup by key (a few pages of a B-tree) on the calling thread: on the
        writer's connection while no group is being written, else on the thread's own.
        A hop to a reader thread costs more than the query, and under load the two threads
        trade the GIL on every statement. The writer's connection keeps its page cache
        across its own commits, where any other connection drops its whole cache at its
        first read after a commit (every audited read commits one): a search that reads
        a few hundred pages then costs several times more."""
        try:
            done, value = self._writes.read_while_idle(fn)
            return value if done else fn(self._reader())  # type: ignore[return-value]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    def _guard(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._reader())
        except sqlite3.OperationalError as exc:
            # locked beyond busy_timeout, disk I/O error, unreadable file: a 503, not a 500
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)

        def setup() -> sqlite3.Connection:
            conn = self._connect()
            # under the turn between processes (`GroupWriter.open`): one process upgrades
            conn.execute("BEGIN IMMEDIATE")
            ddl = list(COMMON_DDL)
            for rtype in RESOURCE_TYPES:
                ddl.extend(token_table_upgrade(conn, rtype))
                ddl.extend(table_ddl(rtype))
            try:
                for statement in ddl:
                    conn.execute(statement)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
            return conn

        await self._writes.open(setup)
        if self._segments is not None:
            self._writes.before_commit = self._segments.sync
        checkpointer = self._writes.checkpointer = Checkpointer(self._open_connection)
        if self._syncs_wal:
            syncer = self._writes.syncer = WalSyncer(self.path + "-wal", GroupWriter.answer)
            syncer.on_synced = checkpointer.poke

    async def close(self) -> None:
        self._writes.close()  # first: it stops the checkpointer, which owns a connection
        with self._lock:
            conns, self._all_conns = self._all_conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._reader_exec.shutdown(wait=False)
        if self._segments is not None:
            self._segments.close()

    async def ping(self) -> bool:
        try:
            return await self._run_read(lambda c: c.execute("SELECT 1").fetchone()[0] == 1)
        except Exception:
            return False

    # -- writes ------------------------------------------------------------------------

    async def commit(self, writes: Sequence[Write]) -> list[Stored]:
        """Group commit (see `sqlite_writer`): this batch in the next transaction, refused
        as a whole or written as a whole; answered once that transaction is durable."""
        placed = self._place(writes)
        result: list[Stored] = await self._writes.run(
            lambda conn, isolated: self._apply_batch(conn, writes, isolated, placed)
        )
        return result

    def _place(self, writes: Sequence[Write]) -> list[Placed | None]:
        """Write the document bytes of the batch to a segment, before its group: once,
        whether the group is applied once or again (isolated)."""
        placed: list[Placed | None] = [None] * len(writes)
        if self._segments is None:
            return placed
        for i, w in enumerate(writes):
            if w.rtype in binary_data.SPLIT_TYPES and w.resource is not None and w.chain is None:
                content, raw = binary_data.kept_apart(w.rtype, w.resource, w.data)
                if raw is not None:
                    placed[i] = (content, raw, self._segments.append(raw))
        return placed

    def _apply_batch(
        self,
        conn: sqlite3.Connection,
        writes: Sequence[Write],
        isolated: bool,
        placed: Sequence[Placed | None],
    ) -> tuple[list[Stored] | None, BaseException | None]:
        """The batch's writes; on a refusal of one of them, none (when `isolated`: else
        the group writer rolls the whole group back and applies it again, isolated)."""
        if isolated:
            conn.execute("SAVEPOINT batch")
        try:
            stored = [self._apply(conn, w, p) for w, p in zip(writes, placed, strict=True)]
        except (VersionConflict, UniqueViolation, ValueError) as exc:
            if isolated:
                conn.execute("ROLLBACK TO batch")
                conn.execute("RELEASE batch")
            return None, exc
        if isolated:
            conn.execute("RELEASE batch")
        return stored, None

    def _apply(self, conn: sqlite3.Connection, w: Write, placed: Placed | None) -> Stored:
        t = w.rtype
        row = None  # a create's id is new: the UNIQUE(id) constraint catches a clash below
        if w.kind != "create":
            row = conn.execute(f'SELECT rid, version FROM "{t}" WHERE id = ?', (w.id,)).fetchone()
            actual = row[1] if row else None
            if actual != w.expected_version:
                raise VersionConflict(t, w.id, w.expected_version, actual)
        resource = w.resource
        if w.chain is not None and resource is not None:
            resource = self._link(conn, w.chain, t, w.id, resource)
        where = None
        if placed is not None:
            content, raw, where = placed
        elif resource is not None:
            content, raw = binary_data.kept_apart(t, resource, w.data)
        else:
            content, raw = None, None
        deleted = w.kind == "delete"
        patient = None if deleted else w.index.patient
        if row is None:
            try:
                rid = conn.execute(
                    f'INSERT INTO "{t}" (id, version, last_updated, deleted, patient, content) '
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (w.id, w.version, w.last_updated, int(deleted), patient, content),
                ).lastrowid
            except sqlite3.IntegrityError:
                held = conn.execute(f'SELECT version FROM "{t}" WHERE id = ?', (w.id,)).fetchone()
                raise VersionConflict(
                    t, w.id, w.expected_version, held[0] if held else None
                ) from None
        else:
            rid = row[0]
            conn.execute(
                f'UPDATE "{t}" SET version = ?, last_updated = ?, deleted = ?, patient = ?, '
                "content = ? WHERE rid = ?",
                (w.version, w.last_updated, int(deleted), patient, content, rid),
            )
            self._delete_terms(conn, t, rid)
        self._write_keys(conn, w)
        if not deleted:
            self._write_terms(conn, t, rid, w.index)
        method = {"create": "POST", "update": "PUT", "delete": "DELETE"}[w.kind]
        conn.execute(
            f'INSERT INTO "{t}_history" (id, version, last_updated, deleted, method, content) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            (w.id, w.version, w.last_updated, int(deleted), method, content),
        )
        if where is not None:
            conn.execute(
                "INSERT INTO resource_file (rtype, id, version, segment, offset, length) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (t, w.id, w.version, where.segment, where.offset, where.length),
            )
        elif raw is not None:
            conn.execute(
                "INSERT INTO resource_data (rtype, id, version, data) VALUES (?, ?, ?, ?)",
                (t, w.id, w.version, raw),
            )
        return Stored(
            t,
            w.id,
            w.version,
            w.last_updated,
            deleted,
            content,
            method,
            resource if w.data is None else None,  # without its data: rebuilt when asked
            data=raw,
        )

    @staticmethod
    def _link(
        conn: sqlite3.Connection, chain: str, rtype: str, id: str, resource: dict[str, Any]
    ) -> dict[str, Any]:
        row = conn.execute(
            "SELECT position, hash FROM chain_head WHERE name = ?", (chain,)
        ).fetchone()
        position, previous = row if row else (0, GENESIS)
        linked, digest = link(resource, previous)
        conn.execute(
            "INSERT INTO chain_head (name, position, hash) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET position = excluded.position, hash = excluded.hash",
            (chain, position + 1, digest),
        )
        conn.execute(
            "INSERT INTO chain_member (name, position, rtype, id) VALUES (?, ?, ?, ?)",
            (chain, position + 1, rtype, id),
        )
        return linked

    def _write_keys(self, conn: sqlite3.Connection, w: Write) -> None:
        if w.kind != "create":  # a new id holds no key yet
            conn.execute("DELETE FROM unique_keys WHERE rtype = ? AND id = ?", (w.rtype, w.id))
        if w.kind == "delete":
            return
        for key in w.unique_keys:
            try:
                conn.execute(
                    "INSERT INTO unique_keys (key, rtype, id) VALUES (?, ?, ?)",
                    (key, w.rtype, w.id),
                )
            except sqlite3.IntegrityError:
                holder = conn.execute(
                    "SELECT rtype, id FROM unique_keys WHERE key = ?", (key,)
                ).fetchone()
                raise UniqueViolation(key, holder[0], holder[1]) from None

    @staticmethod
    def _delete_terms(conn: sqlite3.Connection, t: str, rid: int) -> None:
        for kind in INDEX_TABLES:
            conn.execute(f'DELETE FROM "{t}_{kind}" WHERE rid = ?', (rid,))

    @staticmethod
    def _write_terms(conn: sqlite3.Connection, t: str, rid: int, terms: IndexTerms) -> None:
        if terms.tokens:
            conn.executemany(
                f'INSERT OR IGNORE INTO "{t}_token" (term, patient, rid) VALUES (?, ?, ?)',
                [(f"{p}|{v}", terms.patient or "", rid) for p, v in terms.tokens],
            )
        if terms.refs:
            conn.executemany(
                f'INSERT OR IGNORE INTO "{t}_ref" (term, rid) VALUES (?, ?)',
                [(f"{p}|{v}", rid) for p, v in terms.refs],
            )
        if terms.strings:
            conn.executemany(
                f'INSERT INTO "{t}_string" (param, value, rid) VALUES (?, ?, ?)',
                [(p, v, rid) for p, v in terms.strings],
            )
        if terms.dates:
            conn.executemany(
                f'INSERT INTO "{t}_date" (param, low, high, rid) VALUES (?, ?, ?, ?)',
                [(p, lo, hi, rid) for p, lo, hi in terms.dates],
            )

    # -- reads -------------------------------------------------------------------------

    async def read(self, rtype: str, id: str) -> Stored | None:
        def q(conn: sqlite3.Connection) -> Stored | None:
            row = conn.execute(
                f'SELECT version, last_updated, deleted, content FROM "{rtype}" WHERE id = ?',
                (id,),
            ).fetchone()
            if row is None:
                return None
            stored = Stored(rtype, id, row[0], row[1], bool(row[2]), row[3])
            return hydrate(conn, [stored], self._segments)[0]

        return self._point(q)

    async def vread(self, rtype: str, id: str, version: int) -> Stored | None:
        def q(conn: sqlite3.Connection) -> Stored | None:
            row = conn.execute(
                f'SELECT last_updated, deleted, content, method FROM "{rtype}_history" '
                "WHERE id = ? AND version = ?",
                (id, version),
            ).fetchone()
            if row is None:
                return None
            return hydrate(
                conn,
                [Stored(rtype, id, version, row[0], bool(row[1]), row[2], row[3])],
                self._segments,
            )[0]

        return self._point(q)

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

        def q(conn: sqlite3.Connection) -> HistoryPage:
            sql = (
                f"SELECT seq, id, version, last_updated, deleted, content, method "
                f'FROM "{rtype}_history" WHERE 1=1'
            )
            args: list[Any] = []
            if id is not None:
                sql += " AND id = ?"
                args.append(id)
            if cursor is not None:
                sql += " AND seq < ?"
                args.append(_row_cursor(cursor))
            if since is not None:
                sql += " AND last_updated >= ?"
                args.append(since)
            sql += " ORDER BY seq DESC LIMIT ?"
            args.append(count + 1)
            rows = conn.execute(sql, args).fetchall()
            more = len(rows) > count
            rows = rows[:count]
            entries = [Stored(rtype, r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]
            hydrate(conn, entries, self._segments)
            return HistoryPage(entries, str(rows[-1][0]) if more and rows else None)

        return await self._run_read(q)

    async def holder_of(self, key: str) -> tuple[str, str] | None:
        def q(conn: sqlite3.Connection) -> tuple[str, str] | None:
            row = conn.execute("SELECT rtype, id FROM unique_keys WHERE key = ?", (key,)).fetchone()
            return (row[0], row[1]) if row else None

        return self._point(q)

    async def chain_events(
        self, chain: str, *, after: int = 0, count: int = 1000
    ) -> list[tuple[int, bytes]]:
        def q(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
            members = conn.execute(
                "SELECT position, rtype, id FROM chain_member WHERE name = ? AND position > ? "
                "ORDER BY position LIMIT ?",
                (chain, after, count),
            ).fetchall()
            out = []
            for position, rtype, id in members:
                served = conn.execute(
                    f'SELECT content FROM "{rtype}" WHERE id = ?', (id,)
                ).fetchone()
                kept = conn.execute(
                    f'SELECT content FROM "{rtype}_history" WHERE id = ? ORDER BY version LIMIT 1',
                    (id,),
                ).fetchone()
                out.append((position, _one_copy(served, kept)))
            return out

        return await self._run_read(q)

    async def chain_head(self, chain: str) -> tuple[int, str] | None:
        def q(conn: sqlite3.Connection) -> tuple[int, str] | None:
            row = conn.execute(
                "SELECT position, hash FROM chain_head WHERE name = ?", (chain,)
            ).fetchone()
            return (row[0], row[1]) if row else None

        return await self._run_read(q)

    async def scan(
        self,
        rtype: str,
        *,
        after: str | None = None,
        count: int = 500,
        include_deleted: bool = False,
    ) -> tuple[list[Stored], str | None]:
        live = "" if include_deleted else "deleted = 0 AND "

        def q(conn: sqlite3.Connection) -> tuple[list[Stored], str | None]:
            rows = conn.execute(
                f'SELECT rid, id, version, last_updated, content, deleted FROM "{rtype}" '
                f"WHERE {live}rid > ? ORDER BY rid LIMIT ?",
                (int(after or 0), count),
            ).fetchall()
            entries = [
                Stored(rtype, r[1], r[2], r[3], bool(r[5]), None if r[5] else r[4]) for r in rows
            ]
            hydrate(conn, entries, self._segments)
            return entries, (str(rows[-1][0]) if len(rows) == count else None)

        return await self._run_read(q)

    async def reindex(self, rtype: str, entries: Sequence[tuple[str, int, IndexTerms]]) -> int:
        def replace(conn: sqlite3.Connection, isolated: bool) -> tuple[int, None]:
            done = 0
            for id, version, terms in entries:
                row = conn.execute(
                    f'SELECT rid FROM "{rtype}" WHERE id = ? AND version = ? AND deleted = 0',
                    (id, version),
                ).fetchone()
                if row is None:  # written again meanwhile: indexed by that write
                    continue
                self._delete_terms(conn, rtype, row[0])
                self._write_terms(conn, rtype, row[0], terms)
                conn.execute(
                    f'UPDATE "{rtype}" SET patient = ? WHERE rid = ?', (terms.patient, row[0])
                )
                done += 1
            return done, None

        done: int = await self._writes.run(replace)
        return done

    async def meta(self, key: str) -> str | None:
        def q(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM store_meta WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

        return await self._run_read(q)

    async def set_meta(self, key: str, value: str) -> None:
        def put(conn: sqlite3.Connection, isolated: bool) -> tuple[None, None]:
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            return None, None

        await self._writes.run(put)

    async def purge(self, rtype: str, id: str) -> None:
        def remove(conn: sqlite3.Connection, isolated: bool) -> tuple[list[Location], None]:
            kept = conn.execute(
                "SELECT segment, offset, length FROM resource_file WHERE rtype = ? AND id = ?",
                (rtype, id),
            ).fetchall()
            row = conn.execute(f'SELECT rid FROM "{rtype}" WHERE id = ?', (id,)).fetchone()
            if row:
                self._delete_terms(conn, rtype, row[0])
            conn.execute(f'DELETE FROM "{rtype}" WHERE id = ?', (id,))
            conn.execute(f'DELETE FROM "{rtype}_history" WHERE id = ?', (id,))
            conn.execute("DELETE FROM resource_data WHERE rtype = ? AND id = ?", (rtype, id))
            conn.execute("DELETE FROM resource_file WHERE rtype = ? AND id = ?", (rtype, id))
            conn.execute("DELETE FROM unique_keys WHERE rtype = ? AND id = ?", (rtype, id))
            return [Location(*where) for where in kept], None

        erased: list[Location] = await self._writes.run(remove)
        # once the purge is durable (before, a failed purge would leave rows without bytes)
        if self._segments is not None:
            for where in erased:
                await asyncio.get_running_loop().run_in_executor(
                    self._reader_exec, self._segments.erase, where
                )

    async def search(self, plan: Any) -> Any:
        if sqlite_search.is_bounded(plan):
            # A patient- or id-scoped search reads a handful of rows through indexes: run
            # it on the event loop's own connection. The hop to a reader thread costs as
            # much as the query, and under load the two threads trade the GIL at every
            # switch interval, which lengthens the tail latency.
            return self._point(lambda conn: self._search(conn, plan))
        return await self._run_read(lambda conn: self._search(conn, plan))

    def _search(self, conn: sqlite3.Connection, plan: Any) -> Any:
        result = sqlite_search.execute(conn, plan)
        hydrate(conn, result.entries, self._segments)
        hydrate(conn, result.included, self._segments)
        return result
