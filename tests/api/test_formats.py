"""JSON and XML, chosen by Content-Type, Accept and _format, carry the same content."""

from __future__ import annotations

import base64

from lxml import etree

from tests.conftest import FHIR_JSON, patient

NS = {"f": "http://hl7.org/fhir"}

PATIENT_XML = b"""<Patient xmlns="http://hl7.org/fhir">
  <identifier><system value="urn:oid:1.2.250.1.213.1.4.10"/><value value="279035121518989"/></identifier>
  <name><family value="PAT-TROIS"/><given value="Dominique"/></name>
  <gender value="female"/><birthDate value="1979-03-28"/>
</Patient>"""


def test_xml_in_json_out(client):
    r = client.post(
        "/fhir/Patient", content=PATIENT_XML, headers={"content-type": "application/fhir+xml"}
    )
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert r.json()["name"][0]["family"] == "PAT-TROIS"


def test_json_in_xml_out_by_accept_and_format(client):
    pid = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
    for kwargs in ({"headers": {"accept": "application/fhir+xml"}}, {"params": {"_format": "xml"}}):
        r = client.get(f"/fhir/Patient/{pid}", **kwargs)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+xml")
        doc = etree.fromstring(r.content)
        assert doc.find("f:name/f:family", NS).get("value") == "PAT-TROIS"
        assert doc.find("f:id", NS).get("value") == pid
    as_json = client.get(f"/fhir/Patient/{pid}", params={"_format": "json"})
    assert as_json.headers["content-type"].startswith("application/fhir+json")


def test_xml_bundle_and_outcome(client):
    client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    bundle = client.get("/fhir/Patient", params={"_format": "application/fhir+xml"})
    assert etree.fromstring(bundle.content).tag == "{http://hl7.org/fhir}Bundle"
    err = client.get("/fhir/Patient/nope", headers={"accept": "application/fhir+xml"})
    assert err.status_code == 404
    assert etree.fromstring(err.content).tag == "{http://hl7.org/fhir}OperationOutcome"


def test_unsupported_format_406(client):
    r = client.get("/fhir/metadata", params={"_format": "yaml"})
    assert r.status_code == 406


def test_binary_raw_roundtrip(client):
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
    r = client.post("/fhir/Binary", content=pdf, headers={"content-type": "application/pdf"})
    assert r.status_code == 201
    bid = r.json()["id"]
    raw = client.get(f"/fhir/Binary/{bid}")
    assert raw.content == pdf
    assert raw.headers["content-type"] == "application/pdf"
    res = client.get(f"/fhir/Binary/{bid}", headers={"accept": "application/fhir+json"}).json()
    assert res["resourceType"] == "Binary"
    assert base64.b64decode(res["data"]) == pdf


def test_metadata(client):
    r = client.get("/fhir/metadata")
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    types = {res["type"]: res for res in cs["rest"][0]["resource"]}
    assert {"Patient", "DocumentReference", "Consent", "Binary", "List", "AuditEvent"} <= set(types)
    audit_ops = {i["code"] for i in types["AuditEvent"]["interaction"]}
    assert "create" not in audit_ops and "read" in audit_ops
    assert "application/fhir+xml" in cs["format"]


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["reachable"] is True
