"""Metadata changes of a DocumentReference by JSON Patch (PDSm Flux 03)."""

from __future__ import annotations

from fhir_server.fhir.extensions import FILED_AT_URL, IS_ARCHIVED_URL
from tests.conftest import FHIR_JSON

PATCH = {"content-type": "application/json-patch+json"}
TRE_A07 = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"


def _doc(client):
    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.4.5"},
        "identifier": [
            {
                "system": "urn:ietf:rfc:3986",
                "value": "urn:uuid:0d3c0f6e-6a3b-4c1e-9c55-3b1a1c1d1e1f",
            }
        ],
        "description": "original",
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                        "code": "N",
                    }
                ]
            }
        ],
        "content": [{"attachment": {"contentType": "text/xml", "url": "Binary/x"}}],
    }
    r = client.post("/fhir/DocumentReference", json=doc, headers=FHIR_JSON)
    assert r.status_code == 201
    return r.json()["id"]


def test_mask_by_patch_makes_a_version(client):
    did = _doc(client)
    ops = [
        {
            "op": "add",
            "path": "/securityLabel/-",
            "value": {"coding": [{"system": TRE_A07, "code": "MASQUE_PS"}]},
        }
    ]
    r = client.patch(f"/fhir/DocumentReference/{did}", json=ops, headers=PATCH)
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "2"
    assert [s["coding"][0]["code"] for s in r.json()["securityLabel"]] == ["N", "MASQUE_PS"]
    unmask = [{"op": "remove", "path": "/securityLabel/1"}]
    r2 = client.patch(
        f"/fhir/DocumentReference/{did}", json=unmask, headers={**PATCH, "If-Match": 'W/"2"'}
    )
    assert r2.status_code == 200 and r2.json()["meta"]["versionId"] == "3"
    stale = client.patch(
        f"/fhir/DocumentReference/{did}", json=ops, headers={**PATCH, "If-Match": 'W/"2"'}
    )
    assert stale.status_code == 412


def test_archive_flag_and_status(client):
    did = _doc(client)
    ops = [
        {
            "op": "add",
            "path": "/extension/-",
            "value": {"url": IS_ARCHIVED_URL, "valueBoolean": True},
        },
        {"op": "replace", "path": "/status", "value": "superseded"},
    ]
    r = client.patch(f"/fhir/DocumentReference/{did}", json=ops, headers=PATCH)
    assert r.status_code == 200
    assert r.json()["status"] == "superseded"
    archived = [e for e in r.json()["extension"] if e["url"] == IS_ARCHIVED_URL]
    assert archived == [{"url": IS_ARCHIVED_URL, "valueBoolean": True}]
    # the filing instant is the server's: a patch that drops it leaves it, one that changes
    # it is refused
    filed = [e for e in r.json()["extension"] if e["url"] == FILED_AT_URL]
    assert len(filed) == 1
    wipe = [{"op": "replace", "path": "/extension", "value": []}]
    wiped = client.patch(f"/fhir/DocumentReference/{did}", json=wipe, headers=PATCH)
    assert wiped.status_code == 200, wiped.text
    assert wiped.json()["extension"] == filed
    moved = [
        {"op": "replace", "path": "/extension/0/valueInstant", "value": "2001-01-01T00:00:00Z"}
    ]
    refused = client.patch(f"/fhir/DocumentReference/{did}", json=moved, headers=PATCH)
    assert refused.status_code == 422, refused.text
    assert client.get(f"/fhir/DocumentReference/{did}").json()["extension"] == filed


def test_other_changes_refused_and_nothing_changes(client):
    did = _doc(client)
    bad = [
        {"op": "replace", "path": "/status", "value": "superseded"},
        {"op": "replace", "path": "/description", "value": "rewritten"},
    ]
    r = client.patch(f"/fhir/DocumentReference/{did}", json=bad, headers=PATCH)
    assert r.status_code == 405
    assert r.json()["issue"][0]["expression"] == ["DocumentReference.description"]
    # entered-in-error deletes the document (TD3.3c): with another change it is refused
    eie = [
        {"op": "replace", "path": "/status", "value": "entered-in-error"},
        {"op": "replace", "path": "/description", "value": "rewritten"},
    ]
    assert (
        client.patch(f"/fhir/DocumentReference/{did}", json=eie, headers=PATCH).status_code == 422
    )
    cur = client.get(f"/fhir/DocumentReference/{did}").json()
    assert cur["meta"]["versionId"] == "1" and cur["status"] == "current"
    assert cur["description"] == "original"


def test_conditional_patch_by_identifier(client):
    did = _doc(client)
    ops = [{"op": "replace", "path": "/status", "value": "superseded"}]
    r = client.patch(
        "/fhir/DocumentReference?identifier=urn:ietf:rfc:3986|urn:uuid:0d3c0f6e-6a3b-4c1e-9c55-3b1a1c1d1e1f",
        json=ops,
        headers=PATCH,
    )
    assert r.status_code == 200
    assert r.json()["id"] == did
    none = client.patch("/fhir/DocumentReference?identifier=urn:x|nope", json=ops, headers=PATCH)
    assert none.status_code == 404


def test_patch_errors(client):
    did = _doc(client)
    assert (
        client.patch(
            f"/fhir/DocumentReference/{did}",
            json=[{"op": "remove", "path": "/nothere"}],
            headers=PATCH,
        ).status_code
        == 422
    )
    assert (
        client.patch(f"/fhir/DocumentReference/{did}", json={"op": "x"}, headers=PATCH).status_code
        == 400
    )
    assert (
        client.patch(f"/fhir/DocumentReference/{did}", json=[], headers=FHIR_JSON).status_code
        == 415
    )
    assert client.patch("/fhir/Patient/x", json=[], headers=PATCH).status_code == 405
    assert (
        client.patch("/fhir/DocumentReference/missing", json=[], headers=PATCH).status_code == 404
    )
