"""The pure parts of the MongoDB adapter: history paging cursors (no server). Search plan
compilation is tested in tests/search/test_mongo_compile.py."""

from __future__ import annotations

import pytest

from fhir_server.storage.mongo import decode_cursor, encode_cursor, history_query


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
