"""Filing CDA documents under the DMP's rules: who may file, what the filing records."""

from __future__ import annotations

from pathlib import Path

from tests.access.conftest import AUTHOR, HOSPITAL

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cda"
CDA = {"content-type": "application/hl7-cda+xml"}


def _file(dmp, headers, name="ldl-ses.xml", **params):
    data = (FIXTURES / name).read_bytes()
    return dmp.post(
        "/fhir/DocumentReference/$import-cda",
        content=data,
        params=params,
        headers={**headers, **CDA},
    )


def test_a_lab_system_files_and_the_record_opens(dmp, token):
    system = token("system", organization=HOSPITAL)
    r = _file(dmp, system, "cr-bio-n3.xml")
    assert r.status_code == 201, r.text
    pid = r.json()["subject"]["reference"].split("/")[1]
    patient = token("patient", patient=pid)
    notes = dmp.get(f"/fhir/Communication?patient={pid}", headers=patient).json()
    kinds = {e["resource"]["category"][0]["coding"][0]["code"] for e in notes["entry"]}
    assert {"record-created", "new-document"} <= kinds
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}", headers=patient).json()
    assert any(e["resource"]["action"] == "C" for e in trail["entry"])
    # the system itself reads nothing back
    doc = r.json()["id"]
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=system).status_code == 403


def test_who_may_file(dmp, token):
    assert _file(dmp, token("insurer")).status_code == 403
    assert _file(dmp, token("auditor")).status_code == 403
    assert _file(dmp, token("practitioner", rpps=AUTHOR)).status_code == 201


def test_invisible_to_the_patient_until_the_month_is_over(dmp, token):
    r = _file(dmp, token("practitioner", rpps=AUTHOR), **{"security-label": "INVISIBLE_PATIENT"})
    assert r.status_code == 201, r.text
    doc = r.json()["id"]
    pid = r.json()["subject"]["reference"].split("/")[1]
    patient = token("patient", patient=pid)
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=patient).status_code == 404
    binary = r.json()["content"][0]["attachment"]["url"]
    assert dmp.get(binary, headers=patient).status_code == 404
    listing = dmp.get(f"/fhir/DocumentReference?patient={pid}&status=current", headers=patient)
    assert listing.status_code in (200, 400)  # 400 until status is a known parameter
    if listing.status_code == 200:
        assert listing.json().get("entry", []) == []


def test_a_lab_filing_the_same_document_again_gets_it_back(dmp, token):
    # a retry after a lost answer: the lab reads nothing, but it holds these very bytes
    system = token("system", organization=HOSPITAL)
    first = _file(dmp, system, "cr-bio-n3.xml")
    assert first.status_code == 201, first.text
    again = _file(dmp, system, "cr-bio-n3.xml")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    other_lab = token("system", sub="other-lab", organization="1990000026")
    assert _file(dmp, other_lab, "cr-bio-n3.xml").json()["id"] == first.json()["id"]
    # the refiling is in the patient's trail
    pid = first.json()["subject"]["reference"].split("/")[1]
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}", headers=token("patient", patient=pid))
    assert trail.status_code == 200 and "refiling" in trail.text


def test_different_bytes_under_a_filed_id_are_not_shown_to_a_lab(dmp, token):
    system = token("system", organization=HOSPITAL)
    data = (FIXTURES / "cr-bio-n3.xml").read_bytes()
    assert _file(dmp, system, "cr-bio-n3.xml").status_code == 201
    altered = data.replace(b"</ClinicalDocument>", b"<!-- altered --></ClinicalDocument>")
    assert altered != data
    r = dmp.post("/fhir/DocumentReference/$import-cda", content=altered, headers={**system, **CDA})
    # a uniqueId names one document: refused, naming nothing of the one filed
    assert r.status_code == 409, r.text
    assert "DocumentReference" not in r.text and "Patient" not in r.text


def test_a_lab_publishes_through_mhd_and_may_resend(dmp, token):
    # ITI-65 with the Patient in the Bundle: the record opens before the SubmissionSet and
    # the document are checked; ITI-65 and ITI-105 sent again answer with what was filed
    from tests.ingest.test_mhd import provide_bundle, simplified

    system = {**token("system", organization=HOSPITAL), "content-type": "application/fhir+json"}
    data = (FIXTURES / "cr-bio-n3.xml").read_bytes()
    first = dmp.post("/fhir", json=provide_bundle(data), headers=system)
    assert first.status_code == 200, first.text
    statuses = [e["response"]["status"] for e in first.json()["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    again = dmp.post("/fhir", json=provide_bundle(data), headers=system)
    assert again.status_code == 200, again.text
    assert {e["response"]["status"] for e in again.json()["entry"]} >= {"200 OK"}
    simple = dmp.post("/fhir/DocumentReference", json=simplified(data), headers=system)
    assert simple.status_code == 200, simple.text
    documents = [
        e["resource"]["id"]
        for e in first.json()["entry"]
        if e.get("resource", {}).get("resourceType") == "DocumentReference"
    ]
    assert simple.json()["id"] in documents
