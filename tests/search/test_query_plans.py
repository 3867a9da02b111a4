"""SQLite query plans of the hot searches: driven by an index, never a table scan, and
without relying on ANALYZE statistics (a fresh database has none)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from fhir_server.policy.visibility import LabelRule, VisibilityFilter
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


def _keyed_steps_only(steps: list[str]) -> None:
    # the loose scan of a code's terms walks its own few rows (k), never a table
    assert not any(s.startswith("SCAN") and s not in _LOOSE_SCAN for s in steps), steps


_LOOSE_SCAN = {"SCAN k", "SCAN CONSTANT ROW"}
RECORD_KEY = "USING PRIMARY KEY (term=? AND patient=?)"


def test_hot_iti67_query_reads_the_records_matches_by_token_key(conn):
    steps = explain(conn, "DocumentReference", HOT)
    assert steps[0] == "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"
    assert f"SEARCH DocumentReference_token {RECORD_KEY}" in steps
    assert not any(s.startswith("SCAN") for s in steps), steps
    # every other condition is a point probe by rid, never a range scan of a value index
    probes = [s for s in steps if s.startswith("SEARCH DocumentReference_") and "rid=?" in s]
    others = [s for s in steps if s.startswith("SEARCH DocumentReference_") and s not in probes]
    assert probes and others == [f"SEARCH DocumentReference_token {RECORD_KEY}"], steps


@pytest.mark.parametrize("code", ["http://loinc.org|3016-3", "3016-3", "|3016-3", "3016-3,2345-7"])
def test_a_records_results_by_code_read_only_the_matches(conn, code):
    steps = explain(conn, "Observation", [("patient", "p1"), ("code", code), ("_sort", "-date")])
    # by rowid from the token key; for a choice, from each choice's key (OR of rowid sets)
    assert steps[0] in ("SEARCH r USING INTEGER PRIMARY KEY (rowid=?)", "MULTI-INDEX OR"), steps
    assert f"SEARCH Observation_token {RECORD_KEY}" in steps
    # the sort key of each match is one seek in its date rows
    assert "SEARCH Observation_date USING PRIMARY KEY (rid=? AND param=?)" in steps
    assert "Observation_patient" not in " ".join(steps), steps
    _keyed_steps_only(steps)


def test_the_policys_filter_keeps_the_token_key_and_probes_by_rid(conn):
    visibility = VisibilityFilter(
        "p1",
        allowed_classes=frozenset({"10", "11"}),
        exclude=(LabelRule("MASQUE_PS", unless_author_rpps="8100"),),
    )
    plan = replace(
        parse("Observation", [("patient", "p1"), ("category", "laboratory")]),
        visibility=visibility,
    )
    sql, args = compile_plan(plan)
    steps = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
    steps = steps[1 : steps.index("SCAN p")]
    assert steps[0] == "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)", steps
    assert f"SEARCH Observation_token {RECORD_KEY}" in steps
    # the visibility conditions are probes by rid; the rest reads the key (a code in any
    # system: its distinct terms by seeks, then the record's rows of each)
    searches = [s for s in steps if s.startswith("SEARCH Observation_")]
    probes = [s for s in searches if "rid=?" in s]
    assert len(probes) >= 3, steps
    # the class probe seeks the row's class terms, not every term of the row
    assert all("(rid=? AND term" in s for s in probes if "Observation_token" in s), probes
    loose = "SEARCH Observation_token USING PRIMARY KEY (term>? AND term<?)"
    assert {s for s in searches if s not in probes} == {
        f"SEARCH Observation_token {RECORD_KEY}",
        loose,
    }
    _keyed_steps_only(steps)


@pytest.mark.parametrize(
    "query",
    [
        [("patient", "p1"), ("date", "ge2024")],  # no token condition
        [("patient", "p1"), ("code", "http://loinc.org|")],  # any code of a system
        [("patient", "p1"), ("code:missing", "false")],
    ],
)
def test_a_record_without_a_keyed_token_drives_from_the_patient_index(conn, query):
    steps = explain(conn, "Observation", query)
    assert steps[0] == "SEARCH r USING INDEX Observation_patient (patient=?)", steps
    assert not any(s.startswith("SCAN") for s in steps), steps


def test_chained_ins_query_reads_the_records_matches_by_token_key(conn):
    steps = explain(
        conn, "DocumentReference", [("patient.identifier", "S|V"), ("status", "current")]
    )
    assert f"SEARCH DocumentReference_token {RECORD_KEY}" in steps
    assert "SEARCH Patient_token USING PRIMARY KEY (term=?)" in steps
    _keyed_steps_only(steps)


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
        ("Consent", [("patient", "p1"), ("status", "active")], f"Consent_token {RECORD_KEY}"),
        ("Consent", [("patient", "p1"), ("date", "ge2024")], "Consent_patient"),
    ],
)
def test_other_searches_are_indexed(conn, rtype, query, index):
    steps = explain(conn, rtype, query)
    assert any(index in s for s in steps), steps
    _keyed_steps_only(steps)
