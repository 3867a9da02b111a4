"""Bad input answers with an OperationOutcome and the right status; nothing is stored."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.storage.sqlite import SqliteStore
from tests.conftest import FHIR_JSON, patient

XML = {"content-type": "application/fhir+xml", "accept": "application/fhir+xml"}


def _count(client, rtype="Patient"):
    return len(client.get(f"/fhir/{rtype}").json().get("entry", []))


def _assert_outcome(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    if code:
        assert body["issue"][0]["code"] == code


def _diagnostics(r):
    return r.json()["issue"][0]["diagnostics"]


def test_wrong_ins_key_is_refused_and_nothing_stored(client):
    r = client.post("/fhir/Patient", json=patient(nir="279035121518988"), headers=FHIR_JSON)
    _assert_outcome(r, 422, "business-rule")
    assert r.json()["issue"][0]["expression"] == ["Patient.identifier[0].value"]
    assert _diagnostics(r) == (
        "INS-NIR-TEST '279035121518988' has an invalid NIR key '88' (expected 89)"
    )
    short = client.post("/fhir/Patient", json=patient(nir="27903512151898"), headers=FHIR_JSON)
    _assert_outcome(short, 422)
    assert "must be 15 characters long" in _diagnostics(short)
    letters = client.post("/fhir/Patient", json=patient(nir="2790351215189XY"), headers=FHIR_JSON)
    _assert_outcome(letters, 422)
    assert "invalid NIR key 'XY' (expected 89)" in _diagnostics(letters)
    garbage = client.post("/fhir/Patient", json=patient(nir="ABCDEFGHIJKLM89"), headers=FHIR_JSON)
    _assert_outcome(garbage, 422)
    assert "is not a NIR" in _diagnostics(garbage)
    assert _count(client) == 0


def test_corsica_ins_is_accepted(client):
    # department 2A counts as 19 in the key: 97 - (1850519123456 mod 97) = 33
    assert (
        client.post(
            "/fhir/Patient", json=patient(nir="185052A12345633"), headers=FHIR_JSON
        ).status_code
        == 201
    )
    bad = client.post("/fhir/Patient", json=patient(nir="185052A12345634"), headers=FHIR_JSON)
    _assert_outcome(bad, 422)
    assert "invalid NIR key '34' (expected 33)" in _diagnostics(bad)


def test_malformed_json(client):
    r = client.post("/fhir/Patient", content=b'{"resourceType": "Patient",', headers=FHIR_JSON)
    _assert_outcome(r, 400, "invalid")
    assert _count(client) == 0


def test_malformed_xml(client):
    r = client.post(
        "/fhir/Patient", content=b"<Patient xmlns='http://hl7.org/fhir'><id", headers=XML
    )
    assert r.status_code == 400
    assert b"OperationOutcome" in r.content


def test_xml_external_entity_refused(client):
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>'
    )
    r = client.post("/fhir/Patient", content=xxe, headers=XML)
    assert r.status_code == 400
    assert b"DOCTYPE" in r.content
    assert _count(client) == 0


def test_invalid_resource_names_the_element(client):
    r = client.post(
        "/fhir/Patient", json=patient(gender="sometimes", birthDate="1979-13-45"), headers=FHIR_JSON
    )
    _assert_outcome(r, 400)
    exprs = {e for i in r.json()["issue"] for e in i.get("expression", [])}
    assert "Patient.birthDate" in exprs
    assert "Patient.gender" in exprs
    unknown = client.post("/fhir/Patient", json={**patient(), "colour": "blue"}, headers=FHIR_JSON)
    _assert_outcome(unknown, 400)
    assert unknown.json()["issue"][0]["expression"] == ["Patient.colour"]
    assert _count(client) == 0


def test_resource_type_must_match_url(client):
    r = client.post("/fhir/Consent", json=patient(), headers=FHIR_JSON)
    _assert_outcome(r, 400)
    assert "does not match" in r.json()["issue"][0]["diagnostics"]


def test_bad_id(client):
    r = client.put("/fhir/Patient/bad$id", json=patient(id="bad$id"), headers=FHIR_JSON)
    _assert_outcome(r, 400)
    long_id = "a" * 65
    _assert_outcome(client.get(f"/fhir/Patient/{long_id}"), 400)


def test_unknown_type_and_wrong_method(client):
    _assert_outcome(client.get("/fhir/Encounter/1"), 404, "not-found")
    _assert_outcome(client.post("/fhir/Encounter", json={}, headers=FHIR_JSON), 404)
    _assert_outcome(client.post("/fhir/Patient/123", json=patient(), headers=FHIR_JSON), 405)
    _assert_outcome(
        client.post("/fhir/AuditEvent", json={"resourceType": "AuditEvent"}, headers=FHIR_JSON), 405
    )
    _assert_outcome(client.delete("/fhir/AuditEvent/1"), 405)


def test_unsupported_media_type(client):
    r = client.post("/fhir/Patient", content=b"name=x", headers={"content-type": "text/plain"})
    _assert_outcome(r, 415)
    assert _count(client) == 0


def test_missing_resource_404(client):
    _assert_outcome(client.get("/fhir/Patient/nope"), 404, "not-found")


def test_body_over_limit_413(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        max_body_bytes=1000,
        public_base_url="http://testserver/fhir",
        auth="none",
    )
    with TestClient(create_app(settings, SqliteStore(tmp_path / "s.db"))) as client:
        big = patient(
            text={
                "status": "generated",
                "div": "<div xmlns='http://www.w3.org/1999/xhtml'>" + "x" * 2000 + "</div>",
            }
        )
        r = client.post("/fhir/Patient", json=big, headers=FHIR_JSON)
        _assert_outcome(r, 413, "too-costly")

        def chunks():  # streamed, no Content-Length
            for _ in range(10):
                yield b" " * 200

        r2 = client.post("/fhir/Patient", content=chunks(), headers=FHIR_JSON)
        _assert_outcome(r2, 413)
        assert _count(client) == 0
