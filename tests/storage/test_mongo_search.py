"""The pure parts of the MongoDB adapter: plan compilation and paging cursors (no server)."""

from __future__ import annotations

import pytest

from fhir_server.search.plan import Clause, SearchPlan
from fhir_server.storage.mongo import decode_cursor, encode_cursor, history_query
from fhir_server.storage.mongo_search import compile_mongo


def test_compile_ands_clauses_and_ors_terms():
    plan = SearchPlan(
        "Patient",
        (
            Clause("token", ("identifier|s|1", "identifier|s|2")),
            Clause("ref", ("patient|Patient/p",)),
        ),
        count=10,
        cursor="abc",
    )
    filt, sort, limit = compile_mongo(plan)
    assert filt == {
        "$and": [
            {"deleted": False},
            {"tok": {"$in": ["identifier|s|1", "identifier|s|2"]}},
            {"ref": "patient|Patient/p"},
            {"_id": {"$gt": "abc"}},
        ]
    }
    assert sort == [("_id", 1)] and limit == 11


def test_compile_without_clauses():
    assert compile_mongo(SearchPlan("Patient", count=5))[0] == {"deleted": False}


@pytest.mark.parametrize("cursor", ["", "a b", "x" * 65, "{$gt:1}"])
def test_bad_search_cursor(cursor):
    with pytest.raises(ValueError):
        compile_mongo(SearchPlan("Patient", cursor=cursor))


def test_history_cursor_round_trip_and_refusals():
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", "6b0424f31e6fcf165ba484cd"])
    filt, sort = history_query(None, cursor, None)
    assert sort == [("last_updated", -1), ("_id", -1)] and "$and" in filt
    assert decode_cursor(encode_cursor([3]), (int,)) == [3]
    for bad in ["%%%", encode_cursor(["x"]), encode_cursor([1, 2]), encode_cursor(["a", "b"])]:
        with pytest.raises(ValueError):
            history_query(None, bad, None)
    with pytest.raises(ValueError):
        history_query("id", encode_cursor(["2"]), None)
