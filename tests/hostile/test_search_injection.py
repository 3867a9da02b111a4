"""Search parameters that try to inject database operators (MongoDB `$ne`/`$gt`/`$where`,
SQL fragments) or smuggle parameters: a 400 or an empty result, never rows the query does
not match; the tables survive and the server stays healthy. Seeded resources are the
bait: none of them may come back."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import nir_with_key, patient
from tests.helpers import assert_healthy, assert_refused, auth_headers, snapshot

INJECTIONS = [
    "patient[$ne]=x",
    "patient[$ne]=",
    "subject[$exists]=true",
    "identifier[$gt]=",
    "identifier=" + quote('{"$gt": ""}'),
    "identifier=" + quote('{"$ne": null}'),
    "identifier=" + quote('{"$regex": ".*"}'),
    "patient=" + quote('{"$ne": "x"}'),
    "_id=" + quote("' OR '1'='1"),
    "_id=" + quote('" OR ""="'),
    "_id=" + quote("x' OR 1=1 --"),
    "identifier=x%27;DROP TABLE Patient;--",
    "identifier=" + quote('x\'); DROP TABLE "Patient"; --'),
    "identifier=" + quote("%"),
    "identifier=" + quote("_"),
    "identifier=" + quote("*"),
    "identifier=" + quote("|"),
    "patient=" + quote("Patient/%"),
    "patient=" + quote("' OR rid > 0 --"),
    "_id=" + quote("*"),
    "$where=" + quote("1==1"),
    "_filter=" + quote("id ne x"),
    "_query=all",
    "_count=1;DROP TABLE Patient",
    # (identifier:not / :missing are real FHIR modifiers, tested in tests/search)
    "identifier:above=",
    "_has:DocumentReference:patient:_id=" + quote("*"),
]


def _entries(response) -> list[str]:
    # matches and includes; a lenient search's OperationOutcome entry carries no id
    return [
        e["resource"]["id"]
        for e in response.json().get("entry") or []
        if e.get("search", {}).get("mode") != "outcome"
    ]


def _ignored_with_warning(response) -> bool:
    outcomes = [
        e["resource"]
        for e in response.json().get("entry") or []
        if e.get("search", {}).get("mode") == "outcome"
    ]
    return any("ignored" in i.get("diagnostics", "").lower() for o in outcomes for i in o["issue"])


def _leaks(response, seeded_ids: list[str]) -> str | None:
    """What is wrong with the answer to an injection, or None if it is a safe one."""
    if response.status_code == 200:
        if _ignored_with_warning(response):
            # lenient handling (FHIR's default) may ignore an unknown parameter, never silently
            return None
        leaked = set(_entries(response)) & set(seeded_ids)
        return f"leaked {sorted(leaked)}" if leaked else None
    try:
        assert_refused(response, 400)
    except AssertionError as exc:
        return f"not a clear 400: {exc}"
    return None


# one test per route looping over every injection (one seeding, not one per query); the
# failure message lists each query that went wrong


@pytest.mark.parametrize("rtype", ["Patient", "DocumentReference"])
def test_injection_in_search(client, seeded, rtype):
    before = snapshot(client)
    wrong = {}
    for query in INJECTIONS:
        problem = _leaks(
            client.get(f"/fhir/{rtype}?{query}", headers=auth_headers()), seeded[rtype]
        )
        if problem:
            wrong[query] = problem
    assert not wrong, wrong
    assert snapshot(client) == before
    for kind, ids in seeded.items():  # no table dropped, nothing changed
        for rid in ids:
            r = client.get(f"/fhir/{kind}/{rid}", headers=auth_headers())
            assert r.status_code == 200 and r.json()["meta"]["versionId"] == "1"
    assert_healthy(client)


def test_injection_in_post_search(client, seeded):
    wrong = {}
    for query in INJECTIONS:
        r = client.post(
            "/fhir/DocumentReference/_search",
            content=query.encode(),
            headers={"content-type": "application/x-www-form-urlencoded", **auth_headers()},
        )
        problem = _leaks(r, seeded["DocumentReference"])
        if problem:
            wrong[query] = problem
    assert not wrong, wrong


def test_injection_in_conditional_patch_touches_nothing(client, seeded):
    """A conditional PATCH whose condition is an injection must not pick a random match."""
    before = snapshot(client)
    ops = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]
    for query in INJECTIONS:
        r = client.patch(
            f"/fhir/DocumentReference?{query}",
            json=ops,
            headers={"content-type": "application/json-patch+json", **auth_headers()},
        )
        assert_refused(r, 400, 404, 412)
    assert snapshot(client) == before


def test_injection_in_if_none_exist_does_not_match_seeded(client, seeded):
    """If-None-Exist with an injected condition must never answer with a seeded resource."""
    for n, query in enumerate(INJECTIONS):
        r = client.post(
            "/fhir/Patient",
            json=patient(nir_with_key(f"18503751234{n:02d}"), family="NEW"),
            headers={
                "content-type": "application/fhir+json",
                "if-none-exist": query,
                **auth_headers(),
            },
        )
        if r.status_code in (200, 201):
            assert r.json()["id"] not in seeded["Patient"], query
        else:
            assert_refused(r, 400, 412)


def test_plain_search_still_finds_the_seed(client, seeded):
    """Control: the same search routes do return matches for an honest query."""
    pid = seeded["Patient"][1]
    r = client.get(f"/fhir/DocumentReference?patient={pid}&status=current", headers=auth_headers())
    assert r.status_code == 200
    assert _entries(r) == [seeded["DocumentReference"][1]]


def test_unnamed_parameter_is_a_clear_400_in_xml_too(client):
    """Found by schemathesis: `?=x` with _format=xml made the outcome itself fail (500)."""
    r = client.get("/fhir/Patient?_format=xml&=null", headers=auth_headers())
    assert r.status_code == 400
    assert "<OperationOutcome" in r.text and "search parameter" in r.text
