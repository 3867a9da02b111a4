"""Search contract tests through HTTP: they run on every store of STORE_FACTORIES."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from fhir_server.fhir.extensions import IS_ARCHIVED_URL
from fhir_server.interactions.versioning import make_write, new_id
from tests.conftest import FHIR_JSON, INS_TEST_SYSTEM, VALID_INS, nir_with_key, patient
from tests.search.fixtures import CLASS_SYSTEM, LOINC, MASK_SYSTEM, RPPS, document

DR = "/fhir/DocumentReference"


def post(client, res: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{res['resourceType']}", json=res, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def search(client, path: str, params: Any = None, status: int = 200, **headers: str) -> dict:
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def store_write(client, store, rtype: str, res: dict[str, Any]) -> str:
    """Server-written types (AuditEvent, Communication) go straight through the Store port."""
    id = new_id()
    write = make_write(
        "create", rtype, id, res, current=None, now="2024-06-01T00:00:00.000000+00:00"
    )
    portal = getattr(client, "portal", None)
    if portal is not None:
        portal.call(store.commit, [write])
    else:  # pragma: no cover
        asyncio.run(store.commit([write]))
    return id


@pytest.fixture
def world(client) -> dict[str, Any]:
    """Two patients; four documents for the first, one for the second."""
    p1 = post(client, patient())
    p2 = post(client, patient(nir=nir_with_key("1850575123456"), family="Éléonore-Dupré"))
    docs = {
        "letter": post(
            client, document(p1, unique_id="urn:uuid:1", date="2024-05-03T10:00:00+02:00")
        ),
        "lab": post(
            client,
            document(
                p1,
                category="11",
                type_code="11502-2",
                date="2024-06-10T09:00:00Z",
                period=("2024-06-01T08:00:00Z", None),
                author_rpps="810000000002",
            ),
        ),
        "old": post(
            client,
            document(
                p1,
                status="superseded",
                date="2023-01-15T12:00:00Z",
                period=("2023-01-01", "2023-01-31"),
            ),
        ),
        "masked": post(
            client,
            document(
                p1, date="2024-05-20T00:00:00Z", labels=("MASQUE_PS",), period=(None, "2024-05-19")
            ),
        ),
        "other": post(client, document(p2, date="2024-05-03T09:00:00Z")),
    }
    return {"p1": p1, "p2": p2, **docs}


def q(w: dict[str, Any], extra: str = "", patient_key: str = "p1") -> str:
    return f"{DR}?patient={w[patient_key]}&status=current" + (f"&{extra}" if extra else "")


# -- tokens -----------------------------------------------------------------------------------


def test_token_forms(client, world):
    w = world
    assert set(ids(search(client, q(w)))) == {w["letter"], w["lab"], w["masked"]}
    by_sys = ids(search(client, q(w, f"category={CLASS_SYSTEM}|11")))
    assert by_sys == [w["lab"]]
    assert ids(search(client, q(w, "category=11"))) == [w["lab"]]
    assert ids(search(client, q(w, "category=|11"))) == []  # has a system
    # a code is not the start of a longer one (terms are "category|11<SEP>system")
    assert ids(search(client, q(w, "category=1"))) == []
    assert ids(search(client, q(w, f"category={CLASS_SYSTEM}|1"))) == []
    assert ids(search(client, q(w, f"category={CLASS_SYSTEM[:-1]}|"))) == []
    assert set(ids(search(client, q(w, f"type={LOINC}|")))) == {w["letter"], w["lab"], w["masked"]}
    assert ids(search(client, q(w, "type=http://other|"))) == []
    assert set(ids(search(client, q(w, "category=11,10")))) == {w["letter"], w["lab"], w["masked"]}
    # repetition is AND
    assert ids(search(client, q(w, "category=11&category=10"))) == []
    assert ids(search(client, q(w, f"security-label={MASK_SYSTEM}|MASQUE_PS"))) == [w["masked"]]


def test_token_not_and_missing(client, world):
    w = world
    got = set(ids(search(client, q(w, "security-label:not=MASQUE_PS"))))
    assert got == {w["letter"], w["lab"]}
    assert set(ids(search(client, q(w, "category:not=10,11")))) == set()
    assert ids(search(client, q(w, "identifier:missing=false"))) == [w["letter"]]
    assert set(ids(search(client, q(w, "identifier:missing=true")))) == {w["lab"], w["masked"]}
    search(client, q(w, "identifier:missing=maybe"), status=400)


def test_status_or(client, world):
    w = world
    got = set(ids(search(client, f"{DR}?patient={w['p1']}&status=current,superseded")))
    assert got == {w["letter"], w["lab"], w["old"], w["masked"]}


def test_identifier_on_master_identifier(client, world):
    w = world
    assert ids(search(client, q(w, "identifier=urn:ietf:rfc:3986|urn:uuid:1"))) == [w["letter"]]
    assert ids(search(client, q(w, "identifier=urn:uuid:1"))) == [w["letter"]]


# -- references and chains --------------------------------------------------------------------


def test_reference_forms(client, world):
    w = world
    p1 = w["p1"]
    expected = {w["letter"], w["lab"], w["masked"]}
    for value in (p1, f"Patient/{p1}", f"http://testserver/fhir/Patient/{p1}"):
        assert set(ids(search(client, f"{DR}?patient={value}&status=current"))) == expected
        assert set(ids(search(client, f"{DR}?subject={value}&status=current"))) == expected
    assert set(ids(search(client, f"{DR}?subject:Patient={p1}&status=current"))) == expected
    both = search(client, f"{DR}?patient={p1},{w['p2']}&status=current")
    assert set(ids(both)) == expected | {w["other"]}
    search(client, f"{DR}?patient=Patient/not%20an%20id&status=current", status=400)


def test_patient_identifier_chain_finds_by_ins(client, world):
    w = world
    ins = f"{INS_TEST_SYSTEM}|{VALID_INS}"
    got = search(client, DR, {"patient.identifier": ins, "status": "current"})
    assert set(ids(got)) == {w["letter"], w["lab"], w["masked"]}
    got = search(client, DR, {"patient:identifier": ins, "status": "current"})
    assert set(ids(got)) == {w["letter"], w["lab"], w["masked"]}
    none = search(client, DR, {"patient.identifier": f"{INS_TEST_SYSTEM}|000", "status": "current"})
    assert ids(none) == []


def test_author_identifier_through_contained_practitioner(client, world):
    w = world
    got = search(client, q(w, f"author.identifier={RPPS}|810000000002"))
    assert ids(got) == [w["lab"]]
    assert ids(search(client, q(w, "author:identifier=810000000002"))) == [w["lab"]]
    search(client, q(w, "relatesto.identifier=x"), status=400)


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05", {"letter", "masked"}),  # a month covers the whole month
        ("2024", {"letter", "lab", "masked"}),
        ("2024-05-03", {"letter"}),  # 10:00+02:00 is 08:00Z, inside that day
        ("eq2024-06-10", {"lab"}),
        ("ne2024-05", {"lab"}),
        ("lt2024-05-04", {"letter"}),
        ("gt2024-05-31", {"lab"}),
        ("ge2024-05-20", {"masked", "lab"}),
        ("le2024-05-03", {"letter"}),
        ("sa2024-05-31", {"lab"}),
        ("eb2024-05-20", {"letter"}),
        ("ap2024-05-03", {"letter", "masked", "lab"}),  # 10% of the ~2.5 years to now
        ("ap2020-01-01", set()),
        ("2024-05-03T08:00:00Z", {"letter"}),
    ],
)
def test_date_prefixes_and_precision(client, world, value, expected):
    got = set(ids(search(client, q(world, f"date={value}"))))
    assert got == {world[k] for k in expected}


def test_period_semantics(client, world):
    w = world
    # letter: May 1-2; lab: from June 1 08:00Z, open end; masked: open start, until May 19
    assert set(ids(search(client, q(w, "period=ge2024-05-02")))) == {
        w["letter"],
        w["lab"],
        w["masked"],
    }
    assert set(ids(search(client, q(w, "period=ge2025-01-01")))) == {w["lab"]}  # open end
    assert set(ids(search(client, q(w, "period=lt2024-01-01")))) == {w["masked"]}  # open start
    assert set(ids(search(client, q(w, "period=2024-05")))) == {w["letter"]}  # contained
    assert set(ids(search(client, q(w, "period=sa2024-05-31")))) == {w["lab"]}
    assert set(ids(search(client, q(w, "period=ge2024-05-01&period=le2024-05-31")))) == {
        w["letter"],
        w["masked"],
    }
    search(client, q(w, "date=2024-13"), status=400)
    search(client, q(w, "date=zz2024"), status=400)


def test_pdsm_period_start_and_end(client, world):
    w = world
    # letter: May 1-2; lab: from June 1 08:00Z, no end; masked: no start, until May 19
    assert set(ids(search(client, q(w, "period-start=ge2024-06-01")))) == {w["lab"]}
    assert set(ids(search(client, q(w, "period-start=lt2024-05-15")))) == {w["letter"]}
    assert set(ids(search(client, q(w, "period-end=le2024-05-19")))) == {
        w["letter"],
        w["masked"],
    }
    assert set(ids(search(client, q(w, "period-end=ge2024-05-03")))) == {w["masked"]}
    search(client, q(w, "period-start=2024-99"), status=400)


def test_pdsm_is_archived(client, world):
    w = world
    current = {w["letter"], w["lab"], w["masked"]}
    assert set(ids(search(client, q(w, "isArchived=false")))) == current  # absent = false
    assert ids(search(client, q(w, "isArchived=true"))) == []
    archive = [
        {
            "op": "add",
            "path": "/extension/-",
            "value": {"url": IS_ARCHIVED_URL, "valueBoolean": True},
        }
    ]
    r = client.patch(
        f"{DR}/{w['letter']}",
        json=archive,
        headers={"content-type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert ids(search(client, q(w, "isArchived=true"))) == [w["letter"]]
    assert set(ids(search(client, q(w, "isArchived=false")))) == current - {w["letter"]}


def test_last_updated_and_id(client, world):
    w = world
    assert len(ids(search(client, q(w, "_lastUpdated=ge2000-01-01")))) == 3
    assert ids(search(client, q(w, "_lastUpdated=lt2000-01-01"))) == []
    assert ids(search(client, q(w, f"_id={w['lab']}"))) == [w["lab"]]
    assert set(ids(search(client, q(w, f"_id={w['lab']},{w['letter']}")))) == {
        w["lab"],
        w["letter"],
    }


# -- strings and the Patient parameters -----------------------------------------------------


def test_string_matching(client, world):
    w = world
    assert ids(search(client, "/fhir/Patient?family=eleo")) == [w["p2"]]  # accents, case
    assert ids(search(client, "/fhir/Patient?family=ÉLÉONORE")) == [w["p2"]]
    assert ids(search(client, "/fhir/Patient?family=dupre")) == []  # prefix, not contains
    assert ids(search(client, "/fhir/Patient?family:contains=DUPR")) == [w["p2"]]
    assert ids(search(client, "/fhir/Patient?family:exact=Éléonore-Dupré")) == [w["p2"]]
    assert ids(search(client, "/fhir/Patient?family:exact=éléonore-dupré")) == []
    assert set(ids(search(client, "/fhir/Patient?given=dom"))) == {w["p1"], w["p2"]}
    assert ids(search(client, "/fhir/Patient?name=pat-tr")) == [w["p1"]]
    assert set(ids(search(client, "/fhir/Patient?family=pat,eleo"))) == {w["p1"], w["p2"]}


def test_patient_parameters(client):
    gp = {"identifier": {"system": RPPS, "value": "810000000009"}, "display": "Dr GP"}
    p = post(client, patient(active=True, generalPractitioner=[gp]))
    other = post(
        client, patient(nir=nir_with_key("1850575123456"), gender="male", birthDate="1985-07-01")
    )
    assert ids(
        search(client, "/fhir/Patient", {"identifier": f"{INS_TEST_SYSTEM}|{VALID_INS}"})
    ) == [p]
    assert ids(search(client, "/fhir/Patient", {"identifier": VALID_INS})) == [p]
    assert ids(search(client, "/fhir/Patient?gender=female")) == [p]
    # a record opens active; closing it makes it inactive
    assert sorted(ids(search(client, "/fhir/Patient?active=true"))) == sorted([p, other])
    assert client.post(f"/fhir/Patient/{other}/$close").status_code == 200
    assert ids(search(client, "/fhir/Patient?active=true")) == [p]
    assert ids(search(client, "/fhir/Patient?active=false")) == [other]
    assert ids(search(client, "/fhir/Patient?birthdate=1979-03")) == [p]
    assert ids(search(client, "/fhir/Patient?birthdate=lt1980")) == [p]
    got = search(
        client, "/fhir/Patient", {"general-practitioner:identifier": f"{RPPS}|810000000009"}
    )
    assert ids(got) == [p]
    assert ids(
        search(client, "/fhir/Patient", {"general-practitioner.identifier": "810000000009"})
    ) == [p]


def test_consent_list_auditevent_communication(client, store, world):
    w = world
    consent = post(
        client,
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{w['p1']}"},
            "dateTime": "2024-02-01",
            "provision": {
                "type": "deny",
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "PRCP",
                                }
                            ]
                        },
                        "reference": {"identifier": {"system": RPPS, "value": "810000000005"}},
                    }
                ],
                "purpose": [{"system": "urn:oid:1.2.250.1.213.1.1.4.248", "code": "bris_de_glace"}],
            },
        },
    )
    assert ids(search(client, f"/fhir/Consent?patient={w['p1']}&status=active")) == [consent]
    assert ids(search(client, "/fhir/Consent?actor:identifier=810000000005")) == [consent]
    assert ids(search(client, "/fhir/Consent?purpose=bris_de_glace&date=2024-02")) == [consent]
    assert ids(search(client, "/fhir/Consent?category=59284-0")) == [consent]
    lst = post(
        client,
        {
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "code": {
                "coding": [
                    {
                        "system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
                        "code": "submissionset",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{w['p1']}"},
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.99"}],
            "date": "2024-05-03T10:00:00+02:00",
            "source": {"reference": "Practitioner/pr1"},
        },
    )
    assert ids(search(client, f"/fhir/List?patient={w['p1']}&code=submissionset")) == [lst]
    assert ids(search(client, "/fhir/List?identifier=urn:oid:1.2.3.99&date=2024-05-03")) == [lst]
    assert ids(search(client, "/fhir/List?source=Practitioner/pr1")) == [lst]
    audit = store_write(
        client,
        store,
        "AuditEvent",
        {
            "resourceType": "AuditEvent",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110112"},
            "subtype": [{"system": "urn:ihe:event-type-code", "code": "ITI-67"}],
            "action": "E",
            "recorded": "2024-06-01T09:30:00Z",
            "outcome": "0",
            "agent": [
                {
                    "who": {"identifier": {"system": RPPS, "value": "810000000001"}},
                    "requestor": True,
                }
            ],
            "source": {"observer": {"display": "dmp-fhir"}},
            "entity": [
                {"what": {"reference": f"Patient/{w['p1']}"}},
                {"what": {"reference": f"DocumentReference/{w['letter']}"}},
            ],
        },
    )
    # the server writes AuditEvents of its own (every access): look for ours among them
    assert audit in ids(search(client, f"/fhir/AuditEvent?patient={w['p1']}&subtype=ITI-67"))
    assert audit in ids(search(client, f"/fhir/AuditEvent?entity=DocumentReference/{w['letter']}"))
    agent = "/fhir/AuditEvent?agent:identifier=810000000001"
    assert audit in ids(search(client, f"{agent}&action=E&outcome=0"))
    assert audit not in ids(search(client, f"{agent}&outcome=8"))
    assert audit in ids(search(client, "/fhir/AuditEvent?date=2024-06-01&type=110112"))
    assert audit not in ids(search(client, "/fhir/AuditEvent?date=2024-06-02&type=110112"))
    comm = store_write(
        client,
        store,
        "Communication",
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": {"reference": f"Patient/{w['p1']}"},
            "sent": "2024-06-02T10:00:00Z",
            "category": [{"coding": [{"system": "urn:x", "code": "notification"}]}],
        },
    )
    assert ids(
        search(client, f"/fhir/Communication?patient={w['p1']}&date=2024-06&category=notification")
    ) == [comm]


# -- the PDSm rule, strictness, injection ---------------------------------------------------


def test_document_search_must_name_patient_and_status(client, world):
    for query in ("", "status=current", "category=10", "status:missing=false"):
        body = search(client, f"{DR}?{query}", status=400)
        assert "patient" in body["issue"][0]["diagnostics"]
    body = search(client, f"{DR}?patient={world['p1']}", status=400)
    assert "status" in body["issue"][0]["diagnostics"]


def test_strict_refuses_unknown_parameters_lenient_says_it_ignored_them(client, world):
    # strict is the default: an unknown parameter is refused without a Prefer header
    body = search(client, q(world, "colour=blue"), status=400)
    assert "colour" in body["issue"][0]["diagnostics"]
    search(client, q(world, "colour=blue"), status=400, prefer="handling=strict")
    lenient = search(client, q(world, "colour=blue"), prefer="handling=lenient")
    assert len(ids(lenient)) == 3
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    assert "colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    # a known parameter with an unknown modifier is always refused
    search(client, q(world, "category:fuzzy=10"), status=400)
    # an unsupported _include under strict handling
    search(
        client, q(world, "_include=DocumentReference:author"), status=400, prefer="handling=strict"
    )


@pytest.mark.parametrize(
    "query",
    [
        "patient[$ne]=x&status=current",
        "patient=x&status=current&category[$regex]=.*",
        "patient=x&status=current&_id=' OR 1=1 --",
        "patient=x' OR '1'='1&status=current",
        "patient=x&status=current&_sort=date;DROP TABLE x",
        "patient=x&status=current&_count=1 OR 1=1",
    ],
)
def test_injection_attempts_are_refused(client, world, query):
    search(client, f"{DR}?{query}", status=400)


@pytest.mark.parametrize(
    "params",
    [
        {"identifier": "' OR 1=1 --"},
        {"identifier": "x|' OR ''='"},
        {"family": "%"},
        {"family": "' OR 1=1 --"},
        {"name:contains": "%_"},
        {"_lastUpdated": "ge2000-01-01' OR 1=1"},
    ],
)
def test_injection_values_match_nothing(client, world, params):
    r = client.get("/fhir/Patient", params=params)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert ids(r.json()) == []


def test_deleted_and_updated_documents_are_reindexed(client, world):
    w = world
    assert client.delete(f"{DR}/{w['lab']}").status_code == 204
    assert ids(search(client, q(w, "category=11"))) == []
    # by the patient alone, or by the patient's INS: the deleted document is gone too
    assert set(ids(search(client, q(w)))) == {w["letter"], w["masked"]}
    by_ins = {"patient.identifier": f"{INS_TEST_SYSTEM}|{VALID_INS}", "status": "current"}
    assert set(ids(search(client, DR, by_ins))) == {w["letter"], w["masked"]}
    assert w["lab"] not in ids(search(client, f"{DR}?patient={w['p1']}&_id={w['lab']}"))
    # metadata changes go through PATCH (PDSm): the new version is reindexed
    patch = [{"op": "replace", "path": "/status", "value": "superseded"}]
    r = client.patch(
        f"{DR}/{w['letter']}",
        json=patch,
        headers={"content-type": "application/json-patch+json", "accept": "application/fhir+json"},
    )
    assert r.status_code == 200, r.text
    assert w["letter"] not in ids(search(client, q(w)))
    superseded = search(client, f"{DR}?patient={w['p1']}&status=superseded")
    assert set(ids(superseded)) == {w["letter"], w["old"]}


# -- results: _count, _sort, paging, _total, _summary, _elements, includes ----------------------


def _cursor_of(bundle: dict) -> str | None:
    for link in bundle["link"]:
        if link["relation"] == "next":
            return dict(parse_qsl(urlsplit(link["url"]).query))["_cursor"]
    return None


def _next_url(bundle: dict) -> str | None:
    for link in bundle["link"]:
        if link["relation"] == "next":
            parts = urlsplit(link["url"])
            return parts.path + "?" + parts.query
    return None


@pytest.mark.parametrize(
    "sort", ["", "-date", "date", "_lastUpdated", "-_lastUpdated", "-period", "_id"]
)
def test_paging_neither_misses_nor_repeats_while_documents_arrive(client, sort):
    pid = post(client, patient())
    days = [5, 1, 9, 3, 3, 7, 2, 8]
    originals = {
        post(
            client,
            document(pid, date=f"2024-03-{d:02d}T12:00:00Z", period=(f"2024-02-{d:02d}", None)),
        )
        for d in days
    }
    url = f"{DR}?patient={pid}&status=current&_count=3" + (f"&_sort={sort}" if sort else "")
    seen: list[str] = []
    dates: list[str] = []
    added = 0
    while url:
        page = search(client, url)
        seen += ids(page)
        dates += [e["resource"]["date"] for e in page.get("entry", [])]
        # new documents arrive between pages, before and after the cursor
        for d in (1, 28):
            post(client, document(pid, date=f"2024-03-{d:02d}T{added:02d}:00:00Z"))
            added += 1
        url = _next_url(page)
        assert added < 40, "paging does not terminate"
    assert len(seen) == len(set(seen)), "a document was repeated"
    assert originals <= set(seen), "a document was missed"
    if sort in ("date", "-date"):
        keys = [d[:10] for d in dates]
        assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_count_limits_and_defaults(client):
    pid = post(client, patient())
    for _ in range(4):
        post(client, document(pid))
    assert len(ids(search(client, f"{DR}?patient={pid}&status=current&_count=2"))) == 2
    assert len(ids(search(client, f"{DR}?patient={pid}&status=current&_count=5000"))) == 4
    search(client, f"{DR}?patient={pid}&status=current&_count=-1", status=400)
    bundle = search(client, f"{DR}?patient={pid}&status=current&_count=2")
    assert bundle["link"][0]["relation"] == "self"
    assert "total" not in bundle  # counting only when asked


def test_tampered_or_foreign_cursor_is_refused(client):
    pid = post(client, patient())
    for _ in range(3):
        post(client, document(pid))
    page = search(client, f"{DR}?patient={pid}&status=current&_count=1")
    cursor = _cursor_of(page)
    assert cursor
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    search(client, f"{DR}?patient={pid}&status=current&_count=1&_cursor={flipped}", status=400)
    search(client, f"{DR}?patient={pid}&status=current&_count=1&_cursor=garbage", status=400)
    # a cursor belongs to its query (filters and sort)
    search(client, f"{DR}?patient={pid}&status=current&_sort=-date&_cursor={cursor}", status=400)
    ok = search(client, f"{DR}?patient={pid}&status=current&_count=2&_cursor={cursor}")
    assert len(ids(ok)) == 2


def test_total_modes_and_summary_count(client, world):
    w = world
    assert "total" not in search(client, q(w, "_count=1"))
    assert search(client, q(w, "_count=1&_total=accurate"))["total"] == 3
    assert search(client, q(w, "_count=1&_total=estimate"))["total"] == 3
    assert "total" not in search(client, q(w, "_count=1&_total=none"))
    counted = search(client, q(w, "_summary=count"))
    assert counted["total"] == 3
    assert ids(counted) == []
    # a page of no entries answers the total too, unless the client says _total=none
    empty = search(client, q(w, "_count=0"))
    assert (empty["total"], ids(empty)) == (3, [])
    assert [link["relation"] for link in empty["link"]] == ["self"]
    assert "total" not in search(client, q(w, "_count=0&_total=none"))
    search(client, q(w, "_total=maybe"), status=400)


def test_summary_and_elements(client, world):
    w = world
    summary = search(client, q(w, f"_id={w['letter']}&_summary=true"))["entry"][0]["resource"]
    assert "status" in summary and "subject" in summary
    assert "content" in summary  # content is a summary element of DocumentReference
    assert "contained" not in summary
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = search(client, q(w, f"_id={w['letter']}&_elements=status,date"))["entry"][0][
        "resource"
    ]
    assert set(elements) == {"resourceType", "id", "meta", "status", "date"}
    search(client, q(w, "_elements=status;x"), status=400)


def test_include_patient_and_revinclude_documents(client, world):
    w = world
    bundle = search(client, q(w, "_include=DocumentReference:patient"))
    assert ids(bundle, "include") == [w["p1"]]
    assert ids(search(client, q(w, "_include=DocumentReference:subject")), "include") == [w["p1"]]
    patients = search(client, f"/fhir/Patient?_id={w['p1']}&_revinclude=DocumentReference:patient")
    assert ids(patients) == [w["p1"]]
    assert set(ids(patients, "include")) == {w["letter"], w["lab"], w["old"], w["masked"]}
    # lenient handling ignores an include it does not serve, and says so
    ignored = search(client, q(w, "_include=DocumentReference:author"), prefer="handling=lenient")
    assert [e["search"]["mode"] for e in ignored["entry"]][-1] == "outcome"


def test_post_search_is_the_same_search(client, world):
    w = world
    r = client.post(
        f"{DR}/_search",
        data={"patient": w["p1"], "status": "current", "category": "11"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [w["lab"]]


def test_capability_statement_lists_the_parameters(client):
    cs = client.get("/fhir/metadata").json()
    by_type = {
        r["type"]: {p["name"]: p["type"] for p in r["searchParam"]}
        for r in cs["rest"][0]["resource"]
    }
    doc = by_type["DocumentReference"]
    for name in (
        "patient",
        "status",
        "category",
        "type",
        "date",
        "period",
        "facility",
        "setting",
        "security-label",
        "format",
        "author",
        "relatesto",
        "contenttype",
        "event",
        "identifier",
        "_lastUpdated",
    ):
        assert name in doc
    assert doc["date"] == "date" and doc["patient"] == "reference" and doc["status"] == "token"
    assert by_type["Patient"]["family"] == "string"
    assert by_type["AuditEvent"]["agent"] == "reference"
