"""A laboratory's results through HTTP, on every store: a corrected report (RPLC) takes
the place of the one it replaces in searches, on every filing route; the "Mesures de
santé" queries; one professional's walk through the rules."""

from __future__ import annotations

import pytest

from scripts.provide_bundle import provide_bundle
from tests.access.conftest import HOSPITAL
from tests.access.test_structured_content import (
    CDA,
    FIXTURES,
    TSH,
    _authorised,
    _observations,
)
from tests.cda.documents import cr_bio_body_replacement
from tests.ingest.test_mhd import simplified

FHIR_JSON = {"content-type": "application/fhir+json"}


def _filed(doc):
    """(document id, patient id) of a filed DocumentReference."""
    return doc["id"], doc["subject"]["reference"].split("/")[1]


def _by_import(dmp, headers, data):
    r = dmp.post("/fhir/DocumentReference/$import-cda", content=data, headers={**headers, **CDA})
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

    second, _ = ROUTES[route](dmp, system, cr_bio_body_replacement("2.10"))
    replacing = dmp.get(f"/fhir/DocumentReference/{second}", headers=pro).json()
    assert replacing["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{first}"
    # only the corrected value is in view, in the same commit as the replacement
    assert _values(_observations(dmp, pid, pro, f"&code={TSH}").json()) == [2.1]
    assert _observations(dmp, pid, pro).json()["total"] == 9
    reports = dmp.get(f"/fhir/DiagnosticReport?patient={pid}&_total=accurate", headers=pro)
    assert reports.json()["total"] == 1
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
