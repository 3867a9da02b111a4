"""Transaction and batch Bundles posted to [base]."""

from __future__ import annotations

import base64

from tests.conftest import FHIR_JSON, nir_with_key, patient

PDF = base64.b64encode(b"%PDF-1.4 test").decode()


def _bundle(btype="transaction", bad_second=False):
    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": "urn:uuid:22222222-2222-2222-2222-222222222222",
                }
            }
        ],
    }
    if bad_second:
        doc["status"] = "lost"
    return {
        "resourceType": "Bundle",
        "type": btype,
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333",
                "resource": doc,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "data": PDF,
                },
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }


def test_transaction_resolves_local_references(client):
    r = client.post("/fhir", json=_bundle(), headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses == ["201 Created"] * 3
    pid = out["entry"][0]["resource"]["id"]
    doc = out["entry"][1]["resource"]
    bid = out["entry"][2]["resource"]["id"]
    assert doc["subject"]["reference"] == f"Patient/{pid}"
    assert doc["content"][0]["attachment"]["url"] == f"http://testserver/fhir/Binary/{bid}"
    stored = client.get(f"/fhir/DocumentReference/{doc['id']}").json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    assert client.get(f"/fhir/Binary/{bid}").content == b"%PDF-1.4 test"


def test_transaction_is_all_or_nothing(client):
    r = client.post("/fhir", json=_bundle(bad_second=True), headers=FHIR_JSON)
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.status"]
    for rtype in ("Patient", "DocumentReference", "Binary"):
        assert client.get(f"/fhir/{rtype}").json().get("entry", []) == []


def test_transaction_unique_clash_stores_nothing(client):
    client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    r = client.post("/fhir", json=_bundle(), headers=FHIR_JSON)
    assert r.status_code == 409
    assert client.get("/fhir/DocumentReference").json().get("entry", []) == []
    assert len(client.get("/fhir/Patient").json()["entry"]) == 1


def test_batch_entries_are_independent(client):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": patient(nir=nir_with_key("1750175123401")),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": patient(nir="279035121518988"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/nope"}},
        ],
    }
    r = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200
    out = r.json()
    assert out["type"] == "batch-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created", "422", "404"]
    assert len(client.get("/fhir/Patient").json()["entry"]) == 1


def test_not_a_transaction(client):
    r = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=FHIR_JSON
    )
    assert r.status_code == 400
    r2 = client.post("/fhir", json=patient(), headers=FHIR_JSON)
    assert r2.status_code == 400


def test_conditional_create_match_is_what_local_references_point_at(client):
    """ITI-65 for a known patient: the Patient entry's If-None-Exist matches, and the
    DocumentReference's urn:uuid subject must become that existing Patient (it used to
    point at an id that was never created)."""
    from tests.conftest import INS_TEST_SYSTEM, VALID_INS

    known = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
    bundle = _bundle()
    bundle["entry"][0]["request"]["ifNoneExist"] = f"identifier={INS_TEST_SYSTEM}|{VALID_INS}"
    r = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [e["response"]["status"] for e in out["entry"]] == [
        "200 OK",
        "201 Created",
        "201 Created",
    ]
    assert out["entry"][0]["resource"]["id"] == known
    doc = client.get(f"/fhir/DocumentReference/{out['entry'][1]['resource']['id']}").json()
    assert doc["subject"]["reference"] == f"Patient/{known}"
    assert (
        len(client.get(f"/fhir/DocumentReference?patient={known}&status=current").json()["entry"])
        == 1
    )
