"""The MongoDB compiler: the filters it produces, and the same answers as SQLite for the
same plans (evaluated with a small in-test evaluator of the operators it emits)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_server.fhir.extensions import FILED_AT_URL
from fhir_server.interactions.versioning import make_write
from fhir_server.search.index import extract_terms
from fhir_server.search.parse import parse
from fhir_server.search.plan import PatientChain, TermIn
from fhir_server.storage.mongo_search import (
    chain_filters,
    compile_mongo,
    include_filter,
    sort_value,
    visibility_mongo,
)
from fhir_server.storage.sqlite import SqliteStore
from tests.conftest import INS_TEST_SYSTEM, VALID_INS, patient
from tests.search import minimongo
from tests.search.fixtures import MASK_SYSTEM, document


def plan(query: list[tuple[str, str]], rtype: str = "DocumentReference", **kw: Any):
    return parse(rtype, query, strict=True, **kw)


def test_hot_query_filter():
    p = plan(
        [
            ("patient", "p1"),
            ("status", "current"),
            ("category", "urn:oid:1.2.250.1.213.1.1.4.1|10"),
            ("date", "ge2024-05"),
            ("_sort", "-date"),
            ("_count", "20"),
        ]
    )
    filt, sort, limit = compile_mongo(p)
    assert filt == {
        "$and": [
            {"deleted": {"$ne": True}},
            {"patient": {"$in": ["p1"]}},
            {"tok": {"$elemMatch": {"$gte": "status|current\x1f", "$lt": "status|current "}}},
            {"tok": "category|10\x1furn:oid:1.2.250.1.213.1.1.4.1"},
            {
                "date": {
                    "$elemMatch": {"p": "date", "hi": {"$gte": "2024-05-01T00:00:00.000000+00:00"}}
                }
            },
            # status=current leaves archived documents out (params.IMPLIED)
            {"tok": {"$elemMatch": {"$gte": "isArchived|false\x1f", "$lt": "isArchived|false "}}},
        ]
    }
    assert sort == [("sort.date", -1), ("_id", -1)]
    assert limit == 21


def test_modifiers_filters():
    filt, _, _ = compile_mongo(
        plan(
            [
                ("patient", "p1"),
                ("status:not", "superseded"),
                ("type", "http://loinc.org|"),
                ("identifier:missing", "true"),
                ("security-label", "A,B"),
            ]
        )
    )
    parts = filt["$and"]
    superseded = {"$gte": "status|superseded\x1f", "$lt": "status|superseded "}
    assert {"$nor": [{"tok": {"$elemMatch": superseded}}]} in parts
    assert {"tok": {"$regex": "^type\\|[\\s\\S]*\x1fhttp://loinc\\.org$"}} in parts
    assert {
        "$nor": [{"tok": {"$elemMatch": {"$gte": "identifier|", "$lt": "identifier}"}}}]
    } in parts
    labels = [
        {"tok": {"$elemMatch": {"$gte": f"security-label|{c}\x1f", "$lt": f"security-label|{c} "}}}
        for c in "AB"
    ]
    assert {"$or": labels} in parts


def test_string_and_injection_values_stay_values():
    filt, _, _ = compile_mongo(plan([("family:contains", ".*"), ("given", "$ne")], "Patient"))
    parts = filt["$and"]
    assert {"str": {"$elemMatch": {"p": "family", "v": {"$regex": r"\.\*"}}}} in parts
    given = parts[2]["str"]["$elemMatch"]["v"]
    assert given["$gte"] == "$ne"  # an operator-looking value is only ever a value


def test_chain_needs_resolution():
    p = plan([("patient.identifier", f"{INS_TEST_SYSTEM}|{VALID_INS}"), ("status", "current")])
    [(chain, filt)] = chain_filters(p)
    assert isinstance(chain, PatientChain)
    ins = f"identifier|{VALID_INS}\x1f{INS_TEST_SYSTEM}"
    assert filt == {"deleted": {"$ne": True}, "tok": ins}
    with pytest.raises(ValueError):
        compile_mongo(p)
    resolved, _, _ = compile_mongo(p, {chain: ["p1"]})
    assert {"patient": {"$in": ["p1"]}} in resolved["$and"]


def test_cursor_filter_is_keyset():
    first = plan([("patient", "p1"), ("status", "current"), ("_sort", "-date")])
    from fhir_server.search.plan import encode_cursor

    token = encode_cursor(first, "2024-05-01T00:00:00.000000+00:00", "abc")
    nxt = plan([("patient", "p1"), ("status", "current"), ("_sort", "-date"), ("_cursor", token)])
    filt, _, _ = compile_mongo(nxt)
    assert filt["$and"][-1] == {
        "$or": [
            {"sort.date": {"$lt": "2024-05-01T00:00:00.000000+00:00"}},
            {"sort.date": "2024-05-01T00:00:00.000000+00:00", "_id": {"$lt": "abc"}},
        ]
    }


def test_visibility_hook_is_never_ignored():
    assert visibility_mongo(None) is None

    class Opaque:
        pass

    with pytest.raises(TypeError):
        visibility_mongo(Opaque())


def test_include_filter_reads_page_references():
    from fhir_server.search.plan import Include

    inc = Include("DocumentReference", "patient", "Patient", False)
    docs = [{"ref": ["patient|Patient/a", "subject|Patient/a"]}, {"ref": ["patient|Patient/b"]}]
    assert include_filter(inc, docs) == {"deleted": {"$ne": True}, "_id": {"$in": ["a", "b"]}}
    assert TermIn("tok", ("x",)) == TermIn("tok", ("x",))


# -- parity with SQLite ------------------------------------------------------------------------


def _mongo_doc(rtype: str, res: dict[str, Any]) -> dict[str, Any]:
    t = extract_terms(rtype, res)
    return {
        "_id": res["id"],
        "last_updated": res["meta"]["lastUpdated"],
        "deleted": False,
        "patient": t.patient,
        "tok": [f"{p}|{v}" for p, v in t.tokens],
        "ref": [f"{p}|{v}" for p, v in t.refs],
        "str": [{"p": p, "v": v} for p, v in t.strings],
        "date": [{"p": p, "lo": lo, "hi": hi} for p, lo, hi in t.dates],
        "sort": dict(t.sort),
    }


@pytest.fixture
def both(tmp_path: Path):
    """The same resources in a SQLite store and as Mongo documents."""
    store = SqliteStore(tmp_path / "s.sqlite3")
    resources: list[tuple[str, dict[str, Any]]] = [("Patient", {**patient(), "id": "pA"})]
    specs = [
        ("d1", {"date": "2024-05-03T10:00:00+02:00", "category": "10"}),
        ("d2", {"date": "2024-06-10T09:00:00Z", "category": "11", "period": ("2024-06-01", None)}),
        ("d3", {"date": "2023-01-15T12:00:00Z", "status": "superseded"}),
        (
            "d4",
            {
                "date": "2024-05-20T00:00:00Z",
                "labels": ("MASQUE_PS",),
                "period": (None, "2024-05-19"),
            },
        ),
        ("d5", {"date": "2024-05-20T00:00:00Z", "unique_id": "urn:uuid:5"}),
        ("d6", {"date": "2024-05-21T00:00:00Z", "type_code": "11502-2", "author_rpps": "8100002"}),
    ]
    for id, kw in specs:
        # the embargo runs from the filing instant: here, each document's date
        filed = [{"url": FILED_AT_URL, "valueInstant": kw["date"]}]
        resources.append(
            ("DocumentReference", {**document("pA", **kw), "id": id, "extension": filed})
        )
    docs: dict[str, list[dict[str, Any]]] = {}
    writes = []
    for n, (rtype, res) in enumerate(resources):
        w = make_write(
            "create",
            rtype,
            res["id"],
            res,
            current=None,
            now=f"2024-07-01T00:00:{n:02d}.000000+00:00",
        )
        writes.append(w)
        docs.setdefault(rtype, []).append(_mongo_doc(rtype, w.resource))

    async def setup():
        await store.open()
        await store.commit(writes)

    asyncio.run(setup())
    yield store, docs
    asyncio.run(store.close())


PARITY_QUERIES = [
    "patient=pA&status=current",
    "patient=pA&status=current&_sort=-date",
    "patient=pA&status=current,superseded&_sort=date",
    "patient=pA&status=current&category=10&date=ge2024-05&_sort=-date",
    "patient=pA&status=current&date=2024-05",
    "patient=pA&status=current&date=ne2024-05",
    "patient=pA&status=current&period=ge2024-05-02",
    "patient=pA&status=current&period=lt2024-01-01",
    "patient=pA&status=current&period:missing=true",
    "patient=pA&status=current&security-label:not=MASQUE_PS",
    "patient=pA&status=current&identifier:missing=false",
    "patient=pA&status=current&type=http://loinc.org|&_sort=-_lastUpdated",
    "patient=pA&status=current&author.identifier=8100002",
    f"patient.identifier={INS_TEST_SYSTEM}|{VALID_INS}&status=current&_sort=-period",
    "patient=pA&status=current&_id=d1,d2,d6",
    "patient=pA&status=current&_lastUpdated=ge2024-07-01T00:00:03Z",
]


def _sqlite_ids(store: SqliteStore, p) -> list[str]:
    return [s.id for s in asyncio.run(store.search(p)).entries]


def _mongo_ids(docs: dict[str, list[dict[str, Any]]], p) -> list[str]:
    chains = {
        chain: [d["_id"] for d in minimongo.find(docs["Patient"], filt, [], 0)]
        for chain, filt in chain_filters(p)
    }
    filt, sort, limit = compile_mongo(p, chains)
    return [d["_id"] for d in minimongo.find(docs[p.rtype], filt, sort, limit)]


@pytest.mark.parametrize("query", PARITY_QUERIES)
def test_same_answers_as_sqlite(both, query):
    from urllib.parse import parse_qsl

    store, docs = both
    params = parse_qsl(query)
    assert _sqlite_ids(store, plan(params)) == _mongo_ids(docs, plan(params))
    # and page by page, through the cursors each one produces
    for count in ("1", "2"):
        p = plan([*params, ("_count", count)])
        seen_sql, seen_mongo = [], []
        while True:
            res = asyncio.run(store.search(p))
            seen_sql += [s.id for s in res.entries]
            m_ids = _mongo_ids(docs, p)
            seen_mongo += m_ids[: int(count)]
            if res.next_cursor is None:
                assert len(m_ids) <= int(count)
                break
            last = next(d for d in docs["DocumentReference"] if d["_id"] == m_ids[int(count) - 1])
            from fhir_server.search.plan import encode_cursor

            assert encode_cursor(p, sort_value(p, last), last["_id"]) == res.next_cursor
            p = plan([*params, ("_count", count), ("_cursor", res.next_cursor)])
        assert seen_sql == seen_mongo


# -- the visibility hook: the policy's filter compiled the same way in both stores ------------


@dataclass(frozen=True)
class Rule:  # mirrors policy.visibility.LabelRule's documented fields
    code: str
    unless_author_rpps: str | None = None
    only_if_filed_after: datetime | None = None
    system: str = MASK_SYSTEM


@dataclass(frozen=True)
class Visibility:  # mirrors policy.visibility.VisibilityFilter's documented fields
    patient: str
    match_nothing: bool = False
    allowed_classes: frozenset[str] | None = None
    exclude: tuple[Rule, ...] = ()


@pytest.mark.parametrize(
    ("vis", "hidden"),
    [
        (Visibility("pA"), set()),
        (Visibility("pA", match_nothing=True), {"d1", "d2", "d4", "d5", "d6"}),
        (Visibility("pA", exclude=(Rule("MASQUE_PS"),)), {"d4"}),
        (Visibility("pA", exclude=(Rule("MASQUE_PS", unless_author_rpps="810000000001"),)), set()),
        (Visibility("pA", exclude=(Rule("MASQUE_PS", unless_author_rpps="999"),)), {"d4"}),
        (
            Visibility(
                "pA",
                exclude=(Rule("MASQUE_PS", only_if_filed_after=datetime(2024, 5, 21, tzinfo=UTC)),),
            ),
            set(),  # filed 2024-05-20: before the cutoff, the embargo has lapsed
        ),
        (
            Visibility(
                "pA",
                exclude=(Rule("MASQUE_PS", only_if_filed_after=datetime(2024, 5, 1, tzinfo=UTC)),),
            ),
            {"d4"},
        ),
        (Visibility("pA", allowed_classes=frozenset({"10"})), {"d2"}),
        (Visibility("pA", allowed_classes=frozenset()), {"d1", "d2", "d4", "d5", "d6"}),
        (Visibility("pB"), {"d1", "d2", "d4", "d5", "d6"}),
    ],
)
def test_visibility_filter_same_in_both_stores(both, vis, hidden):
    store, docs = both
    p = replace(plan([("patient", "pA"), ("status", "current")]), visibility=vis)
    expected = [d for d in ("d1", "d2", "d4", "d5", "d6") if d not in hidden]
    assert _sqlite_ids(store, p) == expected
    assert _mongo_ids(docs, p) == expected


def test_unknown_visibility_structure_is_refused(both):
    store, _ = both
    p = replace(plan([("patient", "pA"), ("status", "current")]), visibility=object())
    with pytest.raises(TypeError):
        asyncio.run(store.search(p))
