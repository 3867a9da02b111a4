"""What an operator of the embedded store sees on disk: documents stored once, a WAL that
stays bounded under load, several processes (here: several stores) on one file, and a
write answered only once it is on disk."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from fhir_server.interactions.versioning import make_write
from fhir_server.search.plan import parse_query
from fhir_server.storage import sqlite_writer
from fhir_server.storage.port import StoreUnavailable, Write
from fhir_server.storage.sqlite import SqliteStore


def _binary(id: str, data: bytes) -> Write:
    resource = {
        "resourceType": "Binary",
        "id": id,
        "meta": {"versionId": "1"},
        "contentType": "application/pdf",
        "data": base64.b64encode(data).decode(),
    }
    return Write("create", "Binary", id, 1, "2026-01-01T00:00:00.000000+00:00", resource)


NOW = "2026-02-01T00:00:00.000000+00:00"


def test_a_document_is_stored_once_and_raw(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    document = os.urandom(1 << 20)  # incompressible: the file grows by what is stored

    async def session(write: bool) -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            if write:
                await store.commit([_binary("doc", document)])
                stored = await store.read("Binary", "doc")
                assert stored is not None and stored.data == document
        finally:
            await store.close()  # the last connection closing folds the WAL into the file

    asyncio.run(session(write=False))
    before = path.stat().st_size
    asyncio.run(session(write=True))
    grown = path.stat().st_size - before
    # base64 in the current row and in the history row would be 2.7 MiB
    assert len(document) <= grown < 1.2 * len(document), grown


def test_the_wal_stays_bounded_while_filing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    chunk = os.urandom(200_000)
    rounds, per_round = 12, 8  # 19 MB filed in all

    async def main() -> int:
        store = SqliteStore(path)
        await store.open()
        try:
            largest = 0
            for r in range(rounds):
                await asyncio.gather(
                    *(store.commit([_binary(f"b{r}-{i}", chunk)]) for i in range(per_round))
                )
                await asyncio.sleep(0.3)  # the checkpointer's turn
                largest = max(largest, Path(str(path) + "-wal").stat().st_size)
            return largest
        finally:
            await store.close()

    largest = asyncio.run(main())
    # checkpointed as it goes: the WAL is reused from its start, not grown to the 19 MB
    assert largest < 6_000_000, largest


def test_two_stores_on_one_file_lose_nothing(tmp_path: Path) -> None:
    # `serve --workers 2` is two processes on one file; two stores in one process take
    # the same turns (a lock per open file) and the same SQLite locks
    path = tmp_path / "db.sqlite3"

    async def main() -> list[str]:
        a, b = SqliteStore(path), SqliteStore(path)
        await a.open()
        await b.open()
        try:
            await asyncio.gather(
                *(
                    (a if i % 2 else b).commit([_binary(f"b{i}", f"doc {i}".encode())])
                    for i in range(60)
                )
            )
            found = []
            for i in range(60):
                stored = await (b if i % 2 else a).read("Binary", f"b{i}")
                assert stored is not None
                found.append(base64.b64decode(stored.resource["data"]).decode())
            return found
        finally:
            await a.close()
            await b.close()

    assert asyncio.run(main()) == [f"doc {i}" for i in range(60)]


def test_a_write_is_answered_once_the_wal_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FULL durability, with the sync made outside the write lock: the answer waits for it
    path = tmp_path / "db.sqlite3"
    released = threading.Event()
    synced: list[str] = []
    real_fdatasync = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        released.wait(10)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fdatasync(fd)

    monkeypatch.setattr(sqlite_writer.os, "fdatasync", slow_fdatasync)

    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            pending = asyncio.ensure_future(store.commit([_binary("doc", b"%PDF")]))
            await asyncio.sleep(0.3)
            assert not pending.done(), "answered before the WAL reached the disk"
            # committed already (visible), only not yet acknowledged
            assert await store.read("Binary", "doc") is not None
            released.set()
            await asyncio.wait_for(pending, 10)
        finally:
            released.set()
            await store.close()

    asyncio.run(main())
    assert synced and all(name.endswith("db.sqlite3-wal") for name in synced), synced


def test_a_failed_sync_is_not_acknowledged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sqlite_writer.os, "fdatasync", failing_fdatasync)

    async def main() -> None:
        store = SqliteStore(tmp_path / "db.sqlite3")
        await store.open()
        try:
            with pytest.raises(StoreUnavailable, match="syncing the WAL failed"):
                await store.commit([_binary("doc", b"%PDF")])
        finally:
            await store.close()

    asyncio.run(main())


def test_the_syncer_answers_every_group_even_while_closing(tmp_path: Path) -> None:
    wal = tmp_path / "db.sqlite3-wal"
    wal.write_bytes(b"frames")
    answered: list[tuple[list, list]] = []
    syncer = sqlite_writer.WalSyncer(str(wal), lambda group, out: answered.append((group, out)))
    syncer.submit(["g1"], [("stored", None)])  # type: ignore[list-item]
    syncer.stop()  # answers what was committed before closing
    syncer.submit(["g2"], [("stored", None)])  # a COMMIT that ended during close
    assert answered == [(["g1"], [("stored", None)]), (["g2"], [("stored", None)])]

    gone = sqlite_writer.WalSyncer(
        str(tmp_path / "missing-wal"), lambda g, o: answered.append((g, o))
    )
    gone.submit(["g3"], [("stored", None)])  # type: ignore[list-item]
    gone.stop()
    (_, [(result, error)]) = answered[-1]
    assert result is None and isinstance(error, StoreUnavailable)  # 503, not left waiting


def test_a_new_store_uses_4_kib_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    async def open_close(path: Path) -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    def page_size(path: Path) -> int:
        with sqlite3.connect(path) as conn:
            return conn.execute("PRAGMA page_size").fetchone()[0]

    new = tmp_path / "new.sqlite3"
    asyncio.run(open_close(new))
    assert page_size(new) == 4096

    old = tmp_path / "old.sqlite3"  # a store created with 8 KiB pages (an interim version)
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size=8192")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
    asyncio.run(open_close(old))
    assert page_size(old) == 8192


# Tables as the previous version created them: a store made then keeps them (CREATE TABLE
# IF NOT EXISTS), and must be read and written as well as one made today.
_EARLIER_LAYOUT = [
    """CREATE TABLE "DocumentReference_history" (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, version INTEGER NOT NULL,
        last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, method TEXT NOT NULL,
        content BLOB, UNIQUE(id, version))""",
    """CREATE TABLE "DocumentReference_date" (
        param TEXT NOT NULL, low TEXT NOT NULL, high TEXT NOT NULL, rid INTEGER NOT NULL)""",
    'CREATE INDEX "DocumentReference_date_rplh" ON "DocumentReference_date"(rid, param, low, high)',
    """CREATE TABLE chain_member (
        name TEXT NOT NULL, position INTEGER NOT NULL, rtype TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (name, position))""",
]


def _dated_document(id: str, day: str, current=None) -> Write:
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "date": f"2026-01-{day}T10:00:00+01:00",
        "content": [{"attachment": {"contentType": "text/xml", "url": f"Binary/{id}"}}],
    }
    kind = "update" if current else "create"
    return make_write(kind, "DocumentReference", id, resource, current=current, now=NOW)


def _audit_event(id: str) -> Write:
    resource = {"resourceType": "AuditEvent", "recorded": NOW, "type": {"code": "rest"}}
    write = make_write("create", "AuditEvent", id, resource, current=None, now=NOW)
    return replace(write, chain="audit")


@pytest.mark.parametrize("layout", ["today", "earlier"])
def test_stores_of_either_table_layout_are_read_and_written_alike(tmp_path, layout):
    path = tmp_path / "db.sqlite3"
    if layout == "earlier":
        with sqlite3.connect(path) as conn:
            for ddl in _EARLIER_LAYOUT:
                conn.execute(ddl)

    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.commit([_dated_document("d1", "05"), _dated_document("d2", "20")])
            # an update to the same date: the date rows are replaced, not doubled
            await store.commit(
                [_dated_document("d2", "20", await store.read("DocumentReference", "d2"))]
            )
            query = [("patient", "p1"), ("date", "ge2026-01-10")]
            found = await store.search(parse_query("DocumentReference", query))
            assert [s.id for s in found.entries] == ["d2"]
            page = await store.history("DocumentReference", None, count=10)
            assert [(s.id, s.version) for s in page.entries] == [("d2", 2), ("d2", 1), ("d1", 1)]
            for i in range(3):
                await store.commit([_audit_event(f"a{i}")])
            chain = await store.chain_events("audit")
            assert [position for position, _ in chain] == [1, 2, 3]
        finally:
            await store.close()

    asyncio.run(main())
    with sqlite3.connect(path) as conn:
        (ddl,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'DocumentReference_date'"
        ).fetchone()
    assert ("WITHOUT ROWID" in ddl) == (layout == "today")
