"""A laboratory's results through HTTP, on every store: a corrected report (RPLC) takes
the place of the one it replaces in searches, on every filing route; the "Mesures de
santé" queries; one professional's walk through the rules."""

from __future__ import annotations

import pytest

from scripts.provide_bundle import provide_bundle
from tests.access.conftest import HOSPITAL, STRANGER
from tests.access.test_dmp_scenario import _consent
from tests.access.test_structured_content import (
    CDA,
    DOC_AUTHOR,
    FIXTURES,
    TSH,
    _authorised,
    _observations,
)
from tests.cda.documents import cr_bio_body_version
from tests.ingest.test_mhd import simplified

FHIR_JSON = {"content-type": "application/fhir+json"}
# the author of cr-bio-microbiologie.xml (CDA header)
MICRO_AUTHOR = "810000524685"


def _filed(doc):
    """(document id, patient id) of a filed DocumentReference."""
    return doc["id"], doc["subject"]["reference"].split("/")[1]


def _by_import(dmp, headers, data, **params):
    r = dmp.post(
        "/fhir/DocumentReference/$import-cda",
        content=data,
        params=params,
        headers={**headers, **CDA},
    )
    assert r.status_code == 201, r.text
    return _filed(r.json())


def _by_iti65(dmp, headers, data):
    r = dmp.post("/fhir", json=provide_bundle(data), headers={**headers, **FHIR_JSON})
    assert r.status_code == 200, r.text
    ids = {
        loc.split("/")[0]: loc.split("/")[1]
        for e in r.json()["entry"]
        if (loc := e["response"].get("location"))
    }
    return ids["DocumentReference"], ids.get("Patient")


def _by_iti105(dmp, headers, data):
    r = dmp.post("/fhir/DocumentReference", json=simplified(data), headers={**headers, **FHIR_JSON})
    assert r.status_code == 201, r.text
    return _filed(r.json())


ROUTES = {"import-cda": _by_import, "ITI-65": _by_iti65, "ITI-105": _by_iti105}


def _values(bundle):
    return sorted(e["resource"]["valueQuantity"]["value"] for e in bundle.get("entry", []))


@pytest.mark.parametrize("route", ROUTES)
def test_a_corrected_report_replaces_the_results_of_the_first(dmp, token, route):
    system = token("system", organization=HOSPITAL)
    first, pid = ROUTES[route](dmp, system, (FIXTURES / "cr-bio-body.xml").read_bytes())
    pro = _authorised(dmp, token, pid)
    old = _observations(dmp, pid, pro, f"&code={TSH}").json()
    assert _values(old) == [1.95]
    old_id = old["entry"][0]["resource"]["id"]

    second, _ = ROUTES[route](dmp, system, cr_bio_body_version("2.10"))
    replacing = dmp.get(f"/fhir/DocumentReference/{second}", headers=pro).json()
    assert replacing["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{first}"
    # only the corrected value is in view, in the same commit as the replacement
    assert _values(_observations(dmp, pid, pro, f"&code={TSH}").json()) == [2.1]
    assert _observations(dmp, pid, pro).json()["total"] == 9
    reports = dmp.get(f"/fhir/DiagnosticReport?patient={pid}&_total=accurate", headers=pro)
    assert reports.json()["total"] == 1
    # the report's copy is the filed document, named by its Binary, readable alike
    attachment = replacing["content"][0]["attachment"]
    [copy] = reports.json()["entry"][0]["resource"]["presentedForm"]
    assert (copy["url"], copy["contentType"], copy["title"]) == (
        attachment["url"],
        attachment["contentType"],
        attachment["title"],
    )
    assert "data" not in copy
    assert dmp.get(copy["url"], headers=pro).status_code == 200
    # the replaced report's results, asked for
    superseded = _observations(dmp, pid, pro, f"&code={TSH}&document-status=superseded")
    assert _values(superseded.json()) == [1.95]
    both = _observations(dmp, pid, pro, f"&code={TSH}&document-status=current,superseded")
    assert _values(both.json()) == [1.95, 2.1]
    by_document = _observations(dmp, pid, pro, f"&document={first}")
    assert by_document.json()["total"] == 9
    # by id, under the replaced document's rules
    read = dmp.get(f"/fhir/Observation/{old_id}", headers=pro)
    assert read.status_code == 200, read.text
    status = next(e for e in read.json()["extension"] if e["url"].endswith("/document-status"))
    assert status["valueCode"] == "superseded"
    found = dmp.get(f"/fhir/Observation?_id={old_id}", headers=pro).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [old_id]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("1.95", [("", 1.95)]),
        ("1.9", []),  # 1.9 stands for [1.85, 1.95)
        ("gt100", [("", 140)]),
        ("lt1", [("<", 5), ("", 0.94)]),  # "< 5" may be below 1
        ("ge5|http://unitsofmeasure.org|mmol/L", [("", 5.2), ("", 140)]),
        ("le5||mg/L", [("<", 5)]),
        ("gt5||mg/L", []),  # "< 5" is never above 5
        ("ap130", [("", 140)]),
        ("1.95|http://unitsofmeasure.org|mmol/L", []),
        ("1.95,140", [("", 1.95), ("", 140)]),
    ],
)
def test_results_are_found_by_value_and_unit(dmp, token, query, found):
    system = token("system", organization=HOSPITAL)
    _, pid = _by_import(dmp, system, (FIXTURES / "cr-bio-body.xml").read_bytes())
    patient = token("patient", patient=pid)
    r = _observations(dmp, pid, patient, f"&value-quantity={query}")
    assert r.status_code == 200, r.text
    quantities = [e["resource"]["valueQuantity"] for e in r.json().get("entry", [])]
    assert sorted((q.get("comparator", ""), q["value"]) for q in quantities) == sorted(found)


@pytest.mark.parametrize("query", ["abc", "gt", "5|mg/L", "5|http://unitsofmeasure.org|"])
def test_a_malformed_quantity_is_refused(dmp, token, query):
    system = token("system", organization=HOSPITAL)
    _, pid = _by_import(dmp, system, (FIXTURES / "cr-bio-body.xml").read_bytes())
    r = _observations(dmp, pid, token("patient", patient=pid), f"&value-quantity={query}")
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def _entries(r, mode="match"):
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", []) if e["search"]["mode"] == mode]


def _trend(dmp, pid, headers):
    r = dmp.get(f"/fhir/Observation?patient={pid}&code={TSH}&_sort=-date", headers=headers)
    return [o["valueQuantity"]["value"] for o in _entries(r)]


def _refused(r):
    issue = r.json()["issue"][0]
    return r.status_code, issue["code"]


def test_the_health_measures_queries(dmp, token):
    system = token("system", organization=HOSPITAL)
    _, pid = _by_import(dmp, system, (FIXTURES / "cr-bio-body.xml").read_bytes())
    pro = _authorised(dmp, token, pid)
    [report] = _entries(dmp.get(f"/fhir/DiagnosticReport?patient={pid}", headers=pro))
    results = sorted(ref["reference"] for ref in report["result"])

    r = dmp.get(
        f"/fhir/DiagnosticReport?_id={report['id']}&_include=DiagnosticReport:result", headers=pro
    )
    assert [o["id"] for o in _entries(r)] == [report["id"]]
    assert sorted(f"Observation/{o['id']}" for o in _entries(r, "include")) == results
    members = sorted(m["reference"] for o in _entries(r, "include") for m in o["hasMember"])
    r = dmp.get(
        f"/fhir/Observation?patient={pid}"
        "&_has:Observation:has-member:combo-code=http://loinc.org|18719-5",
        headers=pro,
    )
    assert sorted(f"Observation/{o['id']}" for o in _entries(r)) == members

    for query in (
        f"_has:DiagnosticReport:result:_id={report['id']}",
        f"patient={pid}&_has:DiagnosticReport:result:code=http://loinc.org|11502-2",
    ):
        r = dmp.get(f"/fhir/Observation?{query}", headers=pro)
        assert sorted(f"Observation/{o['id']}" for o in _entries(r)) == results, query
    r = dmp.get(
        f"/fhir/Observation?patient={pid}&_has:DiagnosticReport:result:code=http://loinc.org|0000-0",
        headers=pro,
    )
    assert _entries(r) == []

    r = dmp.get(
        f"/fhir/Observation?patient={pid}&code=http://loinc.org|18719-5"
        "&_revinclude=DiagnosticReport:result",
        headers=pro,
    )
    assert [o["resourceType"] for o in _entries(r)] == ["Observation"]
    assert [d["id"] for d in _entries(r, "include")] == [report["id"]]
    assert _trend(dmp, pid, pro) == [1.95]


@pytest.mark.parametrize(
    "name",
    [
        "_has:DiagnosticReport:result:unknown",
        "_has:DiagnosticReport:subject:_id",
        "_has:Patient:link:_id",
        "_has:DiagnosticReport:result:_has:DiagnosticReport:result:_id",
        "_has:DiagnosticReport",
        "_has:DiagnosticReport:result:_count",
        "_has:DiagnosticReport:result:_include",
    ],
)
def test_an_unsupported_reverse_chain_is_refused(dmp, token, name):
    system = token("system", organization=HOSPITAL)
    _, pid = _by_import(dmp, system, (FIXTURES / "cr-bio-body.xml").read_bytes())
    r = dmp.get(f"/fhir/Observation?patient={pid}&{name}=x", headers=token("patient", patient=pid))
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_professional_sees_the_trend_then_is_blocked_and_never_sees_a_masked_report(dmp, token):
    system = token("system", organization=HOSPITAL)
    _, pid = _by_import(dmp, system, (FIXTURES / "cr-bio-body.xml").read_bytes())
    _by_import(dmp, system, cr_bio_body_version("3.10", replaces=False, day="20240314"))
    masked, _ = _by_import(
        dmp,
        system,
        cr_bio_body_version("5.00", replaces=False, day="20240514"),
        **{"security-label": "MASQUE_PS"},
    )
    patient = token("patient", patient=pid)
    pro = _authorised(dmp, token, pid)
    author = token("practitioner", rpps=DOC_AUTHOR)
    dmp.post("/fhir/Consent", json=_consent(pid, "permit", DOC_AUTHOR), headers=patient)

    # authorised: the TSH trend, newest first, without the masked report's value
    assert _trend(dmp, pid, pro) == [3.1, 1.95]
    # its author sees it, by search and through its report
    assert _trend(dmp, pid, author) == [5.0, 3.1, 1.95]
    r = dmp.get(f"/fhir/DiagnosticReport?patient={pid}&document={masked}", headers=author)
    [hidden_report] = _entries(r)
    chained = f"/fhir/Observation?_has:DiagnosticReport:result:_id={hidden_report['id']}"
    assert len(_entries(dmp.get(chained, headers=author))) == 1
    # to the others the masked report is as absent as an unknown one, through _has too
    unknown = dmp.get("/fhir/Observation?_has:DiagnosticReport:result:_id=no-such", headers=pro)
    hidden = dmp.get(chained, headers=pro)
    assert (hidden.status_code, hidden.text) == (unknown.status_code, unknown.text)
    with_patient = dmp.get(
        f"/fhir/Observation?patient={pid}&_has:DiagnosticReport:result:_id={hidden_report['id']}",
        headers=pro,
    )
    assert _entries(with_patient) == []
    assert dmp.get(f"/fhir/DiagnosticReport/{hidden_report['id']}", headers=pro).status_code == 404

    # blocked by the patient: refused as a search of their documents is
    dmp.post("/fhir/Consent", json=_consent(pid, "deny", STRANGER), headers=patient)
    documents = dmp.get(f"/fhir/DocumentReference?patient={pid}&status=current", headers=pro)
    assert documents.status_code == 403
    for query in (f"patient={pid}&code={TSH}&_sort=-date", f"patient={pid}&value-quantity=gt1"):
        blocked = dmp.get(f"/fhir/Observation?{query}", headers=pro)
        assert _refused(blocked) == _refused(documents), query
    reports = dmp.get(f"/fhir/DiagnosticReport?patient={pid}", headers=pro)
    assert _refused(reports) == _refused(documents)
    # the author, not blocked, still sees everything
    assert _trend(dmp, pid, author) == [5.0, 3.1, 1.95]


@pytest.mark.store_kinds("sqlite")
def test_the_capability_statement_offers_them(dmp):
    cs = dmp.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in cs["rest"][0]["resource"]}
    observation = {p["name"]: p["type"] for p in by_type["Observation"]["searchParam"]}
    assert observation["value-quantity"] == "quantity"
    assert observation["document-status"] == "token"
    assert observation["_has"] == "special"
    assert "DiagnosticReport:result" in by_type["Observation"]["searchRevInclude"]
    assert "DiagnosticReport:result" in by_type["DiagnosticReport"]["searchInclude"]


def test_specimens_follow_their_reports_rules(dmp, token):
    system = token("system", organization=HOSPITAL)
    data = (FIXTURES / "cr-bio-microbiologie.xml").read_bytes()
    doc, pid = _by_import(dmp, system, data, **{"security-label": "MASQUE_PS"})
    patient = token("patient", patient=pid)
    specimens = _entries(dmp.get(f"/fhir/Specimen?patient={pid}", headers=patient))
    assert len(specimens) == 2
    [sample] = [s for s in specimens if "parent" not in s]
    assert sample["subject"] == {"reference": f"Patient/{pid}"}
    found = dmp.get(f"/fhir/Specimen?patient={pid}&type=UR", headers=patient)
    assert [s["id"] for s in _entries(found)] == [sample["id"]]
    # a susceptibility with its isolate, and the isolate with its sample
    r = dmp.get(
        f"/fhir/Observation?patient={pid}&code=http://loinc.org|18864-9"
        "&_include=Observation:specimen",
        headers=patient,
    )
    [isolate] = _entries(r, "include")
    assert isolate["parent"] == [{"reference": f"Specimen/{sample['id']}"}]
    assert dmp.get(f"/fhir/Specimen/{sample['id']}", headers=patient).status_code == 200
    # masked: hidden from an authorised professional as the report is, by search and by id
    pro = _authorised(dmp, token, pid)
    assert _entries(dmp.get(f"/fhir/Specimen?patient={pid}", headers=pro)) == []
    assert dmp.get(f"/fhir/Specimen/{sample['id']}", headers=pro).status_code == 404
    # read-only, like every resource extracted from a document
    r = dmp.put(f"/fhir/Specimen/{sample['id']}", json=sample, headers=patient)
    assert r.status_code == 405, r.text
    # seen by the report's author, and deleted with the report
    author = token("practitioner", rpps=MICRO_AUTHOR)
    dmp.post("/fhir/Consent", json=_consent(pid, "permit", MICRO_AUTHOR), headers=patient)
    assert len(_entries(dmp.get(f"/fhir/Specimen?patient={pid}", headers=author))) == 2
    assert dmp.delete(f"/fhir/DocumentReference/{doc}", headers=author).status_code == 204
    assert _entries(dmp.get(f"/fhir/Specimen?patient={pid}", headers=patient)) == []
