"""IHE MHD publication through HTTP: ITI-65 Provide Document Bundle, ITI-105 simplified
publish, ITI-68 retrieve."""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

import pytest

from scripts.provide_bundle import provide_bundle
from tests.ingest.helpers import (
    DOCUMENTS,
    FHIR_JSON,
    FIXTURES,
    INS,
    check_filed,
    counts,
    file_cda,
    sha1_b64,
)

EMPTY = {"Patient": 0, "Binary": 0, "DocumentReference": 0, "List": 0}
OTHER_INS = "180017511100092"  # a valid NIR key, not the document's patient


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def post(client, bundle):
    return client.post("/fhir", json=bundle, headers=FHIR_JSON)


def _doc(response) -> dict:
    return next(
        e["resource"]
        for e in response.json()["entry"]
        if e.get("resource", {}).get("resourceType") == "DocumentReference"
    )


# -- ITI-65 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), DOCUMENTS)
def test_provide_bundle_files_every_document(client, path, expected):
    data = path.read_bytes()
    r = post(client, provide_bundle(data))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 4
    ref = _doc(r)
    check_filed(client, ref, data, expected)  # size and hash were filled from the Binary
    assert counts(client) == {"Patient": 1, "Binary": 1, "DocumentReference": 1, "List": 1}


@pytest.mark.parametrize(("path", "expected"), DOCUMENTS)
def test_provide_bundle_again_is_idempotent(client, path, expected):
    bundle = provide_bundle(path.read_bytes())
    first = _doc(post(client, bundle))
    before = counts(client)
    again = post(client, bundle)
    assert again.status_code == 200, again.text
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 4
    assert _doc(again)["id"] == first["id"]
    assert counts(client) == before


# the IPS-FR one is identified by an upper-case UUID, lower case in its FHIR form
@pytest.mark.parametrize("name", ["cr-bio-n3.xml", "ips-fr-dlu.xml"])
def test_same_document_through_both_channels_is_stored_once(client, name):
    data = (FIXTURES / name).read_bytes()
    first = file_cda(client, data).json()
    r = post(client, provide_bundle(data))
    assert r.status_code == 200, r.text
    assert _doc(r)["id"] == first["id"]
    assert counts(client) == {"Patient": 1, "Binary": 1, "DocumentReference": 1, "List": 1}


def test_patient_by_ins_is_created_from_the_cda_then_reused(client):
    data = (FIXTURES / "vsm.xml").read_bytes()
    bundle = provide_bundle(
        data,
        patient_in_bundle=False,
        subject={"identifier": dict(zip(("system", "value"), INS, strict=True))},
    )
    r = post(client, bundle)
    assert r.status_code == 200, r.text
    pid = _doc(r)["subject"]["reference"]
    other = provide_bundle((FIXTURES / "ldl-ses.xml").read_bytes(), patient_in_bundle=False)
    r2 = post(client, other)  # no subject at all: the CDA's INS decides
    assert r2.status_code == 200, r2.text
    assert _doc(r2)["subject"]["reference"] == pid
    assert counts(client)["Patient"] == 1


def test_bundle_patient_with_a_known_ins_is_the_known_patient(client):
    known = file_cda(client, (FIXTURES / "vsm.xml").read_bytes()).json()["subject"]["reference"]
    r = post(client, provide_bundle((FIXTURES / "ldl-ses.xml").read_bytes()))
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created", "200 OK"]
    assert _doc(r)["subject"]["reference"] == known
    assert counts(client)["Patient"] == 1


def test_existing_patient_by_id(client):
    known = file_cda(client, (FIXTURES / "vsm.xml").read_bytes()).json()["subject"]["reference"]
    bundle = provide_bundle(
        (FIXTURES / "ldl-ses.xml").read_bytes(),
        patient_in_bundle=False,
        subject={"reference": known},
    )
    r = post(client, bundle)
    assert r.status_code == 200, r.text
    assert _doc(r)["subject"]["reference"] == known


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"type": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]}}, "11490-0"),
        (
            {"masterIdentifier": {"system": "urn:oid:1.2.250.1.999.2.1", "value": "OTHER"}},
            "LDL-0001",
        ),
        ({"subject": {"identifier": {"system": INS[0], "value": OTHER_INS}}}, OTHER_INS),
    ],
    ids=["type", "masterIdentifier", "subject-ins"],
)
def test_metadata_contradicting_the_cda_is_refused(client, change, named):
    bundle = provide_bundle(
        (FIXTURES / "ldl-ses.xml").read_bytes(), patient_in_bundle=False, **change
    )
    r = post(client, bundle)
    assert r.status_code == 422, r.text
    text = r.json()["issue"][0]["diagnostics"]
    assert named in text and "contradicts the CDA" in text
    assert counts(client) == EMPTY


def test_bundle_patient_contradicting_the_cda_is_refused(client):
    bundle = provide_bundle((FIXTURES / "ldl-ses.xml").read_bytes())
    patient = bundle["entry"][3]["resource"]
    ins = next(i for i in patient["identifier"] if i["system"] == INS[0])
    ins["value"] = OTHER_INS
    r = post(client, bundle)
    assert r.status_code == 422, r.text
    assert OTHER_INS in r.json()["issue"][0]["diagnostics"]
    assert counts(client) == EMPTY


@pytest.mark.parametrize(("key", "value"), [("size", 12), ("hash", sha1_b64(b"other"))])
def test_wrong_size_or_hash_is_refused(client, key, value):
    bundle = provide_bundle((FIXTURES / "vsm.xml").read_bytes())
    bundle["entry"][1]["resource"]["content"][0]["attachment"][key] = value
    r = post(client, bundle)
    assert r.status_code == 422, r.text
    assert f"attachment.{key}" in r.json()["issue"][0]["diagnostics"]
    assert counts(client) == EMPTY


def test_attachment_must_point_at_a_binary_of_the_bundle(client):
    bundle = provide_bundle((FIXTURES / "vsm.xml").read_bytes())
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["url"] = "Binary/elsewhere"
    r = post(client, bundle)
    assert r.status_code == 422
    assert "Binary created in the same Bundle" in r.text
    assert counts(client) == EMPTY


def test_exactly_one_submission_set_and_a_document(client):
    bundle = provide_bundle((FIXTURES / "vsm.xml").read_bytes())
    two = copy.deepcopy(bundle)
    two["entry"].append({**copy.deepcopy(two["entry"][0]), "fullUrl": _urn()})
    assert post(client, two).status_code == 422
    none = copy.deepcopy(bundle)
    none["entry"] = [
        e for e in none["entry"] if e["resource"]["resourceType"] != "DocumentReference"
    ]
    assert post(client, none).status_code == 422
    assert counts(client) == EMPTY


@pytest.mark.parametrize(
    "name", ["broken-billion-laughs.xml", "broken-xxe-passwd.xml", "broken-ins-wrong-key.xml"]
)
def test_hostile_cda_in_a_bundle_stores_nothing(client, name):
    good = provide_bundle((FIXTURES / "vsm.xml").read_bytes())
    good["entry"][2]["resource"]["data"] = base64.b64encode((FIXTURES / name).read_bytes()).decode()
    del good["entry"][1]["resource"]["masterIdentifier"]
    r = post(client, good)
    assert r.status_code in (400, 422), r.text
    assert counts(client) == EMPTY


def test_provide_bundle_replacement_supersedes(client):
    old = _doc(post(client, provide_bundle((FIXTURES / "ldl-ses.xml").read_bytes())))
    bundle = provide_bundle((FIXTURES / "ldl-ses-rplc.xml").read_bytes())
    del bundle["entry"][1]["resource"]["relatesTo"]  # the CDA's RPLC is enough
    r = post(client, bundle)
    assert r.status_code == 200, r.text
    new = _doc(r)
    assert new["relatesTo"][0]["code"] == "replaces"
    assert new["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{old['id']}"
    replaced = client.get(f"/fhir/DocumentReference/{old['id']}", headers=FHIR_JSON).json()
    assert replaced["status"] == "superseded"


def test_transaction_without_submission_set_stays_generic(client):
    bundle = provide_bundle((FIXTURES / "vsm.xml").read_bytes())
    bundle["entry"] = bundle["entry"][1:]  # no SubmissionSet: a plain transaction
    bundle["entry"][0]["resource"]["content"][0]["attachment"]["size"] = 1  # not checked there
    r = post(client, bundle)
    assert r.status_code == 200, r.text


# -- ITI-105 --------------------------------------------------------------------------------


def simplified(data: bytes, **fields: Any) -> dict:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [
            {"attachment": {"contentType": "text/xml", "data": base64.b64encode(data).decode()}}
        ],
        **fields,
    }


@pytest.mark.parametrize(("path", "expected"), DOCUMENTS)
def test_simplified_publish_derives_metadata_from_the_cda(client, path, expected):
    data = path.read_bytes()
    r = client.post("/fhir/DocumentReference", json=simplified(data), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    ref = r.json()
    assert r.headers["location"].endswith(f"/DocumentReference/{ref['id']}/_history/1")
    attachment = ref["content"][0]["attachment"]
    assert "data" not in attachment and attachment["url"].startswith(
        "http://testserver/fhir/Binary/"
    )
    assert ref["masterIdentifier"] and ref["author"] and ref["context"]["period"]
    check_filed(client, ref, data, expected)
    again = client.post("/fhir/DocumentReference", json=simplified(data), headers=FHIR_JSON)
    assert again.status_code == 200 and again.json()["id"] == ref["id"]
    assert counts(client) == {"Patient": 1, "Binary": 1, "DocumentReference": 1, "List": 0}


@pytest.mark.parametrize(
    "fields",
    [
        {"type": {"coding": [{"system": "http://loinc.org", "code": "11490-0"}]}},
        {"subject": {"identifier": {"system": INS[0], "value": OTHER_INS}}},
    ],
    ids=["type", "patient"],
)
def test_simplified_publish_contradicting_the_cda_is_refused(client, fields):
    data = (FIXTURES / "cr-bio-n3.xml").read_bytes()
    r = client.post("/fhir/DocumentReference", json=simplified(data, **fields), headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert "contradicts the CDA" in issue["diagnostics"]
    assert issue["expression"][0].startswith("DocumentReference.")
    assert counts(client) == EMPTY


def test_simplified_publish_keeps_given_metadata(client):
    data = (FIXTURES / "cr-bio-n3.xml").read_bytes()
    labels = [
        {
            "coding": [
                {
                    "system": "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
                    "code": "MASQUE_PS",
                }
            ]
        }
    ]
    r = client.post(
        "/fhir/DocumentReference",
        json=simplified(data, description="Bilan", securityLabel=labels),
        headers=FHIR_JSON,
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "Bilan"
    assert r.json()["securityLabel"] == labels


def test_simplified_publish_of_a_pdf(client):
    pdf = b"%PDF-1.4 minimal"
    doc = simplified(pdf, masterIdentifier={"system": "urn:oid:1.2.3", "value": "PDF-1"})
    doc["content"][0]["attachment"]["contentType"] = "application/pdf"
    patient = client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "identifier": [{"system": INS[0], "value": INS[1]}]},
        headers=FHIR_JSON,
    ).json()
    doc["subject"] = {"reference": f"Patient/{patient['id']}"}
    r = client.post("/fhir/DocumentReference", json=doc, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    raw = client.get(r.json()["content"][0]["attachment"]["url"])
    assert raw.content == pdf and raw.headers["content-type"] == "application/pdf"


# -- ITI-68 ---------------------------------------------------------------------------------


def test_retrieve_as_fhir_binary(client):
    data = (FIXTURES / "vsm.xml").read_bytes()
    url = file_cda(client, data).json()["content"][0]["attachment"]["url"]
    r = client.get(url, headers={"accept": "application/fhir+json"})
    assert r.status_code == 200
    binary = r.json()
    assert binary["resourceType"] == "Binary" and binary["contentType"] == "text/xml"
    assert base64.b64decode(binary["data"]) == data


@pytest.mark.parametrize(("type_code", "code"), [("APND", "appends"), ("XFRM", "transforms")])
def test_both_routes_relate_a_document_alike(client, type_code, code):
    # the same relation, read from the CDA, by $import-cda and by ITI-65
    parent = (FIXTURES / "ldl-ses-rplc.xml").read_bytes()
    related = parent.replace(b'typeCode="RPLC"', f'typeCode="{type_code}"'.encode())
    by_import = related.replace(b'extension="LDL-0002"', b'extension="LDL-0002-A"')
    by_bundle = related.replace(b'extension="LDL-0002"', b'extension="LDL-0002-B"')
    assert by_import != related and by_bundle != related
    imported = file_cda(client, by_import)
    assert imported.status_code == 201, imported.text
    bundle = provide_bundle(by_bundle)
    del bundle["entry"][1]["resource"]["relatesTo"]
    provided = post(client, bundle)
    assert provided.status_code == 200, provided.text
    relations = [imported.json()["relatesTo"], _doc(provided)["relatesTo"]]
    assert relations[0] == relations[1]
    assert relations[0][0]["code"] == code
    assert relations[0][0]["target"]["identifier"]["value"].endswith("LDL-0001")
