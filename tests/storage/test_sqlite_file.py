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
from fhir_server.search.parse import parse_query
from fhir_server.storage import sqlite_segments, sqlite_writer
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


def _fail_syncs_of(monkeypatch: pytest.MonkeyPatch, suffix: str, error: OSError) -> None:
    """`os.fdatasync` fails with `error` for the files whose name ends with `suffix`."""
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(suffix):
            raise error
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*")) if folder.exists() else 0


def test_a_document_is_stored_once_and_raw_beside_the_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    folder = tmp_path / "db.sqlite3-documents"
    document = os.urandom(1 << 20)  # incompressible: the files grow by what is stored

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
    # once, raw (base64 in the current and the history rows would be 2.7 MiB), in a segment
    assert _folder_bytes(folder) == len(document)
    # health data: neither the folder nor its files are open to other users
    assert folder.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())
    assert document in b"".join(p.read_bytes() for p in folder.glob("*.seg"))
    # the database holds the JSON and where the bytes are, not the bytes
    assert path.stat().st_size - before < 64 * 1024
    assert document[:4096] not in path.read_bytes()


def test_document_bytes_of_versions_written_before_segments_are_still_read(
    tmp_path: Path,
) -> None:
    # a database of an earlier release holds a Binary's bytes in `resource_data`
    path = tmp_path / "db.sqlite3"
    document = b"%PDF-1.7 written by an earlier release"

    async def write() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.commit([_binary("old", document)])
        finally:
            await store.close()

    asyncio.run(write())
    with sqlite3.connect(path) as conn:  # as the earlier release kept it
        conn.execute("DELETE FROM resource_file")
        conn.execute(
            "INSERT INTO resource_data (rtype, id, version, data) VALUES ('Binary', 'old', 1, ?)",
            (document,),
        )
    for seg in (tmp_path / "db.sqlite3-documents").glob("*.seg"):
        seg.write_bytes(bytes(seg.stat().st_size))

    async def read() -> bytes | None:
        store = SqliteStore(path)
        await store.open()
        try:
            stored = await store.read("Binary", "old")
            return stored.data if stored else None
        finally:
            await store.close()

    assert asyncio.run(read()) == document


def test_a_purged_document_leaves_no_bytes_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    secret = b"CR-BIO TSH 4.2 mUI/L " + os.urandom(32).hex().encode()
    kept = b"another patient's document " + os.urandom(32).hex().encode()

    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.commit([_binary("gone", secret)])
            await store.commit([_binary("kept", kept)])
            await store.purge("Binary", "gone")
            assert await store.read("Binary", "gone") is None
            other = await store.read("Binary", "kept")
            assert other is not None and other.data == kept
        finally:
            await store.close()

    asyncio.run(main())
    on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert secret not in on_disk
    assert kept in on_disk


def test_a_purged_document_gives_its_disk_space_back(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_bytes(os.urandom(1 << 20))
    fd = os.open(probe, os.O_WRONLY)
    try:
        if not sqlite_segments._punch_hole(fd, 0, 1 << 20):
            pytest.skip("this file system cannot punch holes: purged bytes are zeroed instead")
    finally:
        os.close(fd)
    path = tmp_path / "db.sqlite3"
    big = os.urandom(4 << 20)

    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.commit([_binary("big", big)])
            await store.commit([_binary("small", b"kept")])
            await store.purge("Binary", "big")
            small = await store.read("Binary", "small")
            assert small is not None and small.data == b"kept"
        finally:
            await store.close()

    asyncio.run(main())
    (segment,) = (tmp_path / "db.sqlite3-documents").glob("*.seg")
    assert segment.stat().st_size == len(big) + 4  # offsets of other documents unchanged
    assert segment.stat().st_blocks * 512 < 1 << 20, segment.stat().st_blocks


def test_a_full_segment_is_followed_by_a_new_one_and_every_document_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_segments, "SEGMENT_LIMIT", 10_000)
    documents = {f"b{i}": os.urandom(3_000 + i) for i in range(40)}

    async def main() -> None:
        store = SqliteStore(tmp_path / "db.sqlite3")
        await store.open()
        try:
            # concurrent filings: segments are started while groups are being synced
            await asyncio.gather(
                *(store.commit([_binary(id, data)]) for id, data in documents.items())
            )
            for id, data in documents.items():
                stored = await store.read("Binary", id)
                assert stored is not None and stored.data == data, id
        finally:
            await store.close()

    asyncio.run(main())
    segments = list((tmp_path / "db.sqlite3-documents").glob("*.seg"))
    assert len(segments) >= 12  # 120 KB in segments of at most 10 KB
    assert all(seg.stat().st_size <= 10_000 for seg in segments)


def test_a_document_whose_bytes_are_missing_is_unavailable_not_empty(tmp_path: Path) -> None:
    # a database restored without its documents folder, or a segment cut short
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.commit([_binary("cut", b"%PDF-1.7 " * 100)])
            await store.commit([_binary("gone", b"%PDF-1.7 " * 100)])
            (segment,) = (tmp_path / "db.sqlite3-documents").glob("*.seg")
            os.truncate(segment, 500)
            with pytest.raises(StoreUnavailable, match="ends before byte"):
                await store.read("Binary", "cut")
            segment.unlink()
            other = SqliteStore(path)  # a store that has not opened that segment yet
            await other.open()
            try:
                with pytest.raises(StoreUnavailable, match="No such file"):
                    await other.read("Binary", "gone")
            finally:
                await other.close()
        finally:
            await store.close()

    asyncio.run(main())


def test_a_failed_sync_of_document_bytes_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fdatasync
    _fail_syncs_of(monkeypatch, ".seg", OSError(28, "No space left on device"))

    async def main() -> None:
        store = SqliteStore(tmp_path / "db.sqlite3")
        await store.open()
        try:
            with pytest.raises(StoreUnavailable, match="syncing the document bytes failed"):
                await store.commit([_binary("doc", b"%PDF")])
            monkeypatch.setattr(os, "fdatasync", real)
            assert await store.read("Binary", "doc") is None  # rolled back, not half there
            await store.commit([_binary("doc", b"%PDF again")])  # the store goes on
            stored = await store.read("Binary", "doc")
            assert stored is not None and stored.data == b"%PDF again"
        finally:
            await store.close()

    asyncio.run(main())


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
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.endswith("-wal"):
            released.wait(10)
        synced.append(name)
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
    # the document bytes first (before the COMMIT that refers to them), then the WAL
    assert [name.rsplit(".", 1)[-1] for name in synced] == ["seg", "sqlite3-wal"], synced


def test_a_failed_sync_is_not_acknowledged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_syncs_of(monkeypatch, "-wal", OSError(5, "Input/output error"))

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


def _result(id: str, patient: str, code: str, day: str) -> Write:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": f"2026-01-{day}T08:00:00+01:00",
    }
    return make_write("create", "Observation", id, resource, current=None, now=NOW)


def _to_earlier_token_tables(path: Path) -> None:
    """Token tables as earlier versions made them: keyed by (term, rid), no record."""
    with sqlite3.connect(path) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_token' "
                "ESCAPE '\\'"
            )
        ]
        for t in names:
            conn.execute(f'ALTER TABLE "{t}" RENAME TO "{t}_now"')
            conn.execute(f'DROP INDEX "{t}_rid"')
            conn.execute(
                f'CREATE TABLE "{t}" (term TEXT NOT NULL, rid INTEGER NOT NULL, '
                "PRIMARY KEY(term, rid)) WITHOUT ROWID"
            )
            conn.execute(f'CREATE INDEX "{t}_rid" ON "{t}"(rid)')
            conn.execute(f'INSERT INTO "{t}" SELECT term, rid FROM "{t}_now"')
            conn.execute(f'DROP TABLE "{t}_now"')


def test_a_store_with_earlier_token_tables_is_rebuilt_at_start_up_and_answers_alike(tmp_path):
    path = tmp_path / "db.sqlite3"
    queries = [
        ("Observation", [("patient", "p1"), ("code", "http://loinc.org|3016-3")]),
        ("Observation", [("patient", "p1"), ("code", "3016-3"), ("_sort", "-date")]),
        ("Observation", [("code", "3016-3")]),
        ("Observation", [("patient", "p2"), ("status", "final")]),
        ("DocumentReference", [("patient", "p1"), ("status", "current")]),
    ]

    async def answers(store: SqliteStore) -> list[list[str]]:
        found = [await store.search(parse_query(rtype, q)) for rtype, q in queries]
        return [[s.id for s in page.entries] for page in found]

    async def first() -> list[list[str]]:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.commit(
                [
                    _result("o1", "p1", "3016-3", "05"),
                    _result("o2", "p1", "2345-7", "06"),
                    _result("o3", "p2", "3016-3", "07"),
                    _result("o4", "p1", "3016-3", "08"),
                    _dated_document("d1", "05"),
                ]
            )
            return await answers(store)
        finally:
            await store.close()

    before = asyncio.run(first())
    assert before == [["o1", "o4"], ["o4", "o1"], ["o1", "o3", "o4"], ["o3"], ["d1"]]
    _to_earlier_token_tables(path)

    async def again() -> list[list[str]]:
        store = SqliteStore(path)
        await store.open()
        try:
            found = await answers(store)
            # written after the upgrade: keyed by its record like the rest
            await store.commit([_result("o5", "p1", "3016-3", "09")])
            newer = await store.search(parse_query(*queries[1]))
            assert [s.id for s in newer.entries] == ["o5", "o4", "o1"]
            return found
        finally:
            await store.close()

    assert asyncio.run(again()) == before
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            'SELECT DISTINCT patient FROM "Observation_token" ORDER BY patient'
        ).fetchall()
        (ddl,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'Observation_token'"
        ).fetchone()
        indexes = conn.execute(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'Observation_token' AND type = 'index'"
        ).fetchall()
    assert rows == [("p1",), ("p2",)]
    assert "PRIMARY KEY (term, patient, rid)" in ddl
    assert indexes == [("Observation_token_rid",)]
