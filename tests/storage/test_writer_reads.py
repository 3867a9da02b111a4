"""Reads by key and patient-scoped searches run on the SQLite writer's connection while no
group is open on it (its page cache survives its own commits). They must never see a
write that is not committed, and never run while a group is being written."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from fhir_server.storage.sqlite import SqliteStore


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM probe").fetchone()[0]


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "store.sqlite3")
    asyncio.run(s.open())
    conn = sqlite3.connect(s.path, isolation_level=None)
    conn.execute("CREATE TABLE probe(x)")
    conn.close()
    yield s
    asyncio.run(s.close())


def test_idle_writer_connection_reads_committed_data(store):
    done, seen = store._writes.read_while_idle(_count)
    assert done and seen == 0

    async def write() -> list[tuple[bool, int | None]]:
        inside: list[tuple[bool, int | None]] = []

        def job(conn: sqlite3.Connection, isolated: bool):
            conn.execute("INSERT INTO probe VALUES (1)")
            # while the group is open, its connection is not lent: the read goes elsewhere
            inside.append(store._writes.read_while_idle(_count))
            # and a read by key made now sees the committed state only
            inside.append((True, store._point(_count)))
            return None, None

        await store._writes.run(job)
        return inside

    lent, point = asyncio.run(write())
    assert lent == (False, None)
    assert point == (True, 0)
    done, seen = store._writes.read_while_idle(_count)
    assert done and seen == 1


def test_no_group_starts_while_the_connection_is_lent(store):
    """A group queued while a read on another thread holds the writer's connection waits
    for the read to end."""
    reading = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow_read(conn: sqlite3.Connection) -> int:
        reading.set()
        release.wait(5)
        order.append("read ends")
        return _count(conn)

    reader = threading.Thread(target=store._writes.read_while_idle, args=(slow_read,))
    reader.start()
    assert reading.wait(5)

    def job(conn: sqlite3.Connection, isolated: bool):
        order.append("group applies")
        conn.execute("INSERT INTO probe VALUES (1)")
        return None, None

    # the read ends a little later, on its own (queuing the group waits for it meanwhile)
    threading.Timer(0.2, release.set).start()
    asyncio.run(store._writes.run(job))
    reader.join(5)
    assert order == ["read ends", "group applies"]
