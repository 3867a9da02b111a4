"""SQLite query plans of the hot searches: driven by an index, never a table scan, and
without relying on ANALYZE statistics (a fresh database has none)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from fhir_server.search.parse import parse
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite_search import compile_plan


@pytest.fixture
def conn(tmp_path: Path):
    async def create():
        store = SqliteStore(tmp_path / "s.sqlite3")
        await store.open()
        await store.close()

    asyncio.run(create())
    c = sqlite3.connect(tmp_path / "s.sqlite3")
    yield c
    c.close()


def explain(conn: sqlite3.Connection, rtype: str, query: list[tuple[str, str]]) -> list[str]:
    """The steps that choose the page (its rows are then read by rowid: `SCAN p`)."""
    sql, args = compile_plan(parse(rtype, query))
    steps = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
    assert steps[0] == "MATERIALIZE p" and "SCAN p" in steps, steps
    return steps[1 : steps.index("SCAN p")]


HOT = [
    ("patient", "p1"),
    ("status", "current"),
    ("category", "S|10"),
    ("date", "ge2024-01"),
    ("period", "le2025"),
    ("_sort", "-date"),
]


def test_hot_iti67_query_drives_from_the_patient_index(conn):
    steps = explain(conn, "DocumentReference", HOT)
    assert steps[0] == "SEARCH r USING INDEX DocumentReference_patient (patient=?)"
    assert not any(s.startswith("SCAN") for s in steps), steps
    # every other condition is a point probe by rid, never a range scan of a value index
    probes = [s for s in steps if s.startswith("SEARCH DocumentReference_")]
    assert probes and all("rid=?" in s for s in probes), probes


def test_chained_ins_query_drives_from_the_patient_index(conn):
    steps = explain(
        conn, "DocumentReference", [("patient.identifier", "S|V"), ("status", "current")]
    )
    assert steps[0] == "SEARCH r USING INDEX DocumentReference_patient (patient=?)"
    assert "SEARCH Patient_token USING PRIMARY KEY (term=?)" in steps
    assert not any(s.startswith("SCAN") for s in steps), steps


@pytest.mark.parametrize(
    ("rtype", "query", "index"),
    [
        ("Patient", [("identifier", "S|V")], "Patient_token USING PRIMARY KEY (term=?)"),
        ("Patient", [("family", "dup"), ("gender", "female")], "Patient_string_pv"),
        (
            "AuditEvent",
            [("patient", "p1"), ("date", "ge2024")],
            "AuditEvent_ref USING PRIMARY KEY (term=?)",
        ),
        ("Consent", [("patient", "p1"), ("status", "active")], "Consent_patient"),
    ],
)
def test_other_searches_are_indexed(conn, rtype, query, index):
    steps = explain(conn, rtype, query)
    assert any(index in s for s in steps), steps
    assert not any(s.startswith("SCAN") for s in steps), steps
