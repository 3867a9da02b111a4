"""Query parsing (pure): names, modifiers, values and result parameters into a plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_server.errors import FhirError
from fhir_server.search.dates import parse_range, widen
from fhir_server.search.parse import parse, parse_query, split_values
from fhir_server.search.plan import (
    AnyOf,
    DateMatch,
    Has,
    IdIn,
    Include,
    Not,
    PatientChain,
    PatientIn,
    Sort,
    StringMatch,
    TermIn,
    TermPrefix,
    TermSuffix,
    decode_cursor,
    encode_cursor,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def p(query, rtype="DocumentReference", **kw):
    kw.setdefault("strict", True)
    return parse(rtype, query, now=NOW, **kw)


def test_token_forms():
    plan = p([("category", "S|C"), ("type", "|C"), ("status", "current"), ("format", "S|")])
    # terms are "param|code<SEP>system" (search.tokens)
    assert plan.where == (
        TermIn("tok", ("category|C\x1fS",)),
        TermIn("tok", ("type|C\x1f",)),
        TermPrefix("tok", "status|current\x1f"),
        TermSuffix("tok", "format|", "\x1fS"),
        # status=current leaves archived documents out (params.IMPLIED)
        TermPrefix("tok", "isArchived|false\x1f"),
    )


def test_status_current_leaves_archived_out_unless_is_archived_is_named():
    named = p([("status", "current"), ("isArchived", "true")])
    assert named.where == (
        TermPrefix("tok", "status|current\x1f"),
        TermPrefix("tok", "isArchived|true\x1f"),
    )
    assert p([("status", "superseded")]).where == (TermPrefix("tok", "status|superseded\x1f"),)


def test_comma_is_or_and_escaped_comma_is_literal():
    assert p([("status", "a,b")]).where == (
        AnyOf((TermPrefix("tok", "status|a\x1f"), TermPrefix("tok", "status|b\x1f"))),
    )
    assert split_values(r"a\,b,c") == ["a,b", "c"]
    mixed = p([("category", "S|,X")]).where[0]
    assert mixed == AnyOf(
        (TermSuffix("tok", "category|", "\x1fS"), TermPrefix("tok", "category|X\x1f"))
    )


def test_modifiers():
    assert p([("status:not", "x")]).where == (Not(TermPrefix("tok", "status|x\x1f")),)
    assert p([("status:missing", "true")]).where == (Not(Has("tok", "status")),)
    assert p([("period:missing", "false")]).where == (Has("date", "period"),)
    with pytest.raises(FhirError):
        p([("status:text", "x")])
    with pytest.raises(FhirError):
        p([("date:not", "2024")])


def test_references():
    assert p([("patient", "1")]).where == (PatientIn(("1",)),)
    assert p([("subject", "https://h/fhir/Patient/1")]).where == (PatientIn(("1",)),)
    assert p([("relatesto", "2")]).where == (TermIn("ref", ("relatesto|DocumentReference/2",)),)
    author = p([("author", "3")]).where[0]
    assert isinstance(author, TermIn) and "author|Practitioner/3" in author.terms
    assert p([("author:Device", "3")]).where == (TermIn("ref", ("author|Device/3",)),)
    chain = p([("patient.identifier", "S|V")]).where[0]
    assert chain == PatientChain(TermIn("tok", ("identifier|V\x1fS",)))
    assert p([("author.identifier", "V")]).where == (TermPrefix("tok", "author:identifier|V\x1f"),)
    for bad in ("Patient/", "../x", "Patient/a b", "a'b"):
        with pytest.raises(FhirError):
            p([("patient", bad)])
    with pytest.raises(FhirError):
        p([("patient.name", "x")])


def test_strings():
    assert p([("family", "Éléo")], "Patient").where == (StringMatch("family", "prefix", "eleo"),)
    assert p([("family:exact", "Éléo")], "Patient").where == (
        StringMatch("family:exact", "exact", "Éléo"),
    )
    assert p([("name:contains", "ÉL")], "Patient").where == (StringMatch("name", "contains", "el"),)


def test_dates():
    lo, hi = parse_range("2024-05")
    assert (lo, hi) == ("2024-05-01T00:00:00.000000+00:00", "2024-05-31T23:59:59.999999+00:00")
    assert p([("date", "2024-05")]).where == (
        DateMatch("date", (("lo", ">=", lo), ("hi", "<=", hi))),
    )
    assert p([("date", "ge2024-05")]).where == (DateMatch("date", (("hi", ">=", lo),)),)
    assert p([("date", "lt2024-05")]).where == (DateMatch("date", (("lo", "<", lo),)),)
    assert p([("date", "sa2024-05")]).where == (DateMatch("date", (("lo", ">", hi),)),)
    assert p([("date", "eb2024-05")]).where == (DateMatch("date", (("hi", "<", lo),)),)
    assert isinstance(p([("date", "ne2024-05")]).where[0], Not)
    ap = p([("date", "ap2024-05")]).where[0]
    assert ap.bounds[0][2] > hi and ap.bounds[1][2] < lo
    for bad in ("2024-13", "2024-02-30", "tomorrow", "gt", "2024-05-01T25:00Z"):
        with pytest.raises(FhirError):
            p([("date", bad)])


def test_date_precisions():
    assert parse_range("2024") == (
        "2024-01-01T00:00:00.000000+00:00",
        "2024-12-31T23:59:59.999999+00:00",
    )
    assert parse_range("2024-02-29")[1] == "2024-02-29T23:59:59.999999+00:00"
    assert parse_range("2024-05-03T10:00+02:00") == (
        "2024-05-03T08:00:00.000000+00:00",
        "2024-05-03T08:00:59.999999+00:00",
    )
    assert parse_range("9999")[1] == "9999-12-31T23:59:59.999999+00:00"
    lo, hi = widen("2025-01-01T00:00:00.000000+00:00", "2025-01-01T23:59:59.999999+00:00", NOW)
    assert lo < "2024-12-31" and hi > "2025-01-02"


def test_id_last_updated_and_results():
    plan = p(
        [
            ("_id", "a,b"),
            ("_lastUpdated", "gt2024"),
            ("_count", "5000"),
            ("_sort", "-date"),
            ("_total", "accurate"),
            ("_elements", "status,date"),
            ("_include", "DocumentReference:patient"),
            ("_format", "json"),
        ],
        max_count=1000,
    )
    assert plan.where[0] == IdIn(("a", "b"))
    assert plan.where[1] == DateMatch(
        "_lastUpdated", (("hi", ">", "2024-12-31T23:59:59.999999+00:00"),)
    )
    assert plan.count == 1000
    assert plan.sort == Sort("date", True)
    assert plan.total == "accurate"
    assert plan.elements == ("status", "date")
    assert plan.includes == (Include("DocumentReference", "patient", "Patient", False),)
    assert p([("_summary", "count")]).count == 0
    for bad in [
        ("_sort", "family"),
        ("_sort", "--date"),
        ("_sort", "date,_id"),
        ("_count", "x"),
        ("_summary", "all"),
    ]:
        with pytest.raises(FhirError):
            p([bad])


def test_revinclude_only_on_patient():
    plan = p([("_revinclude", "DocumentReference:patient")], "Patient")
    assert plan.includes == (Include("DocumentReference", "patient", "Patient", True),)
    with pytest.raises(FhirError):
        p([("_revinclude", "DocumentReference:patient")], "DocumentReference")


def test_strict_and_lenient():
    with pytest.raises(FhirError) as err:
        p([("colour", "blue")])
    assert err.value.status == 400
    plan = p([("colour", "blue"), ("status", "")], strict=False)
    assert plan.ignored == ("colour", "status") and plan.where == ()
    # malformed names are refused even when lenient: they are how injections look
    for name in ("patient[$ne]", "a b", "x;drop", "$where", "_id)"):
        with pytest.raises(FhirError):
            p([(name, "x")], strict=False)


def test_pdsm_required_parameters():
    ok = [("patient", "1"), ("status", "current")]
    p(ok, enforce_required=True)
    p([("patient.identifier", "S|V"), ("status", "current")], enforce_required=True)
    for bad in (
        [("patient", "1")],
        [("status", "current")],
        [("patient:missing", "false"), ("status", "x")],
    ):
        with pytest.raises(FhirError) as err:
            p(bad, enforce_required=True)
        assert err.value.issues[0].code == "required"
    p([("identifier", "x")])  # conditional create does not enforce it


def test_cursor_round_trip_and_binding():
    plan = p([("patient", "1"), ("status", "current"), ("_sort", "-date")])
    token = encode_cursor(plan, "2024", "doc-1")
    assert decode_cursor(token, plan.fingerprint).id == "doc-1"
    with_cursor = p(
        [
            ("patient", "1"),
            ("status", "current"),
            ("_sort", "-date"),
            ("_count", "3"),
            ("_cursor", token),
        ]
    )
    assert with_cursor.cursor.value == "2024"
    with pytest.raises(FhirError):
        p([("patient", "2"), ("status", "current"), ("_sort", "-date"), ("_cursor", token)])
    with pytest.raises(FhirError):
        decode_cursor(token[:-3], plan.fingerprint)


def test_parse_query_keeps_its_conditional_create_signature():
    plan = parse_query("Patient", [("identifier", "S|V")], default_count=2, max_count=2)
    assert plan.count == 2 and plan.where == (TermIn("tok", ("identifier|V\x1fS",)),)
    with pytest.raises(FhirError):
        parse_query("Patient", [("unknown", "x")], default_count=2, max_count=2)
