"""Each DMP rule once more, through HTTP, as the actor concerned sees it."""

from __future__ import annotations

import pytest

from tests.access.conftest import AUTHOR, EMERGENCY_DOC, HOSPITAL, SAMU, STRANGER, TREATING
from tests.access.test_dmp_scenario import _consent, _document, _patient

PATCH = "application/json-patch+json"
TRE_A07 = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"


@pytest.fixture
def rec(dmp, token):
    insurer = token("assurance-maladie")
    pid = dmp.post("/fhir/Patient", json=_patient(), headers=insurer).json()["id"]
    author = token("practitioner", rpps=AUTHOR, organization=HOSPITAL)
    doc = dmp.post("/fhir/DocumentReference", json=_document(pid, "CR"), headers=author).json()[
        "id"
    ]
    return pid, doc


def _patch(dmp, doc, ops, headers):
    return dmp.patch(
        f"/fhir/DocumentReference/{doc}", json=ops, headers={**headers, "content-type": PATCH}
    )


def test_patient_masks_and_unmasks(dmp, token, rec):
    pid, doc = rec
    patient = token("patient", patient=pid)
    mask = [
        {
            "op": "add",
            "path": "/securityLabel/-",
            "value": {"coding": [{"system": TRE_A07, "code": "MASQUE_PS"}]},
        }
    ]
    assert _patch(dmp, doc, mask, patient).status_code == 200
    dmp.post("/fhir/Consent", json=_consent(pid, "permit", STRANGER), headers=patient)
    stranger = token("practitioner", rpps=STRANGER)
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=stranger).status_code == 404
    unmask = [{"op": "remove", "path": "/securityLabel/0"}]
    assert _patch(dmp, doc, unmask, patient).status_code == 200
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=stranger).status_code == 200
    # a professional other than the treating physician cannot mask
    assert _patch(dmp, doc, mask, stranger).status_code == 403


def test_only_the_author_deletes(dmp, token, rec):
    pid, doc = rec
    patient = token("patient", patient=pid)
    assert dmp.delete(f"/fhir/DocumentReference/{doc}", headers=patient).status_code == 403
    assert (
        dmp.delete(
            f"/fhir/DocumentReference/{doc}", headers=token("practitioner", rpps=TREATING)
        ).status_code
        == 403
    )
    assert (
        dmp.delete(
            f"/fhir/DocumentReference/{doc}", headers=token("practitioner", rpps=AUTHOR)
        ).status_code
        == 204
    )
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=patient).status_code == 410


def test_block_beats_break_glass(dmp, token, rec):
    pid, doc = rec
    patient = token("patient", patient=pid)
    assert (
        dmp.post(
            "/fhir/Consent", json=_consent(pid, "deny", EMERGENCY_DOC), headers=patient
        ).status_code
        == 201
    )
    glass = {
        **token("practitioner", rpps=EMERGENCY_DOC),
        "X-Access-Mode": "bris_de_glace",
        "X-Access-Justification": "coma",
    }
    # by id: as if the document did not exist; a search of the record: refused, without
    # saying why (the Consent that blocks is the patient's business)
    r = dmp.get(f"/fhir/DocumentReference/{doc}", headers=glass)
    assert r.status_code == 404
    absent = dmp.get("/fhir/DocumentReference/no-such-id", headers=glass)
    assert r.text.replace(doc, "no-such-id") == absent.text
    s = dmp.get(f"/fhir/DocumentReference?patient={pid}&status=current", headers=glass)
    assert s.status_code == 403
    assert "Consent" not in s.text and "block" not in s.text
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}&_count=100", headers=patient).json()
    rules = {e["resource"]["outcomeDesc"].split(":")[0] for e in trail["entry"]}
    assert "consent-block" in rules


def test_emergency_opt_out_and_centre_15(dmp, token, rec):
    pid, doc = rec
    samu = {**token("samu-regulator", rpps=SAMU), "X-Access-Mode": "centre_15"}
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=samu).status_code == 200
    # centre_15 is for the SAMU only
    as_doctor = {**token("practitioner", rpps=STRANGER), "X-Access-Mode": "centre_15"}
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=as_doctor).status_code == 403
    patient = token("patient", patient=pid)
    assert (
        dmp.post(
            "/fhir/Consent", json=_consent(pid, "deny", purpose="ETREAT"), headers=patient
        ).status_code
        == 201
    )
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=samu).status_code == 404
    search = f"/fhir/DocumentReference?patient={pid}&status=current"
    assert dmp.get(search, headers=samu).status_code == 403


def test_emergency_access_is_read_only(dmp, token, rec):
    pid, doc = rec
    glass = {
        **token("practitioner", rpps=EMERGENCY_DOC),
        "X-Access-Mode": "bris_de_glace",
        "X-Access-Justification": "coma",
    }
    r = dmp.post("/fhir/DocumentReference", json=_document(pid, "urgence"), headers=glass)
    assert r.status_code == 403


def test_closed_record_is_read_only_and_reopens(dmp, token, rec):
    pid, doc = rec
    patient = token("patient", patient=pid)
    author = token("practitioner", rpps=AUTHOR)
    closed = dmp.post(f"/fhir/Patient/{pid}/$close", headers=patient)
    assert closed.status_code == 200 and closed.json()["active"] is False
    assert (
        dmp.post(
            "/fhir/DocumentReference", json=_document(pid, "trop tard"), headers=author
        ).status_code
        == 403
    )
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=patient).status_code == 200
    # only the holder reopens
    assert (
        dmp.post(
            f"/fhir/Patient/{pid}/$reopen", headers=token("practitioner", rpps=TREATING)
        ).status_code
        == 403
    )
    assert dmp.post(f"/fhir/Patient/{pid}/$reopen", headers=patient).status_code == 200
    assert (
        dmp.post(
            "/fhir/DocumentReference", json=_document(pid, "après"), headers=author
        ).status_code
        == 201
    )


def test_other_patients_and_forbidden_roles(dmp, token, rec):
    pid, doc = rec
    other = token("patient", patient="someone-else")
    assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=other).status_code == 404
    for role in ("insurer", "employer", "occupational-physician"):
        assert dmp.get(f"/fhir/Patient/{pid}", headers=token(role)).status_code == 403
    staff = token("admin-staff", organization=HOSPITAL)
    assert dmp.get(f"/fhir/Patient/{pid}", headers=staff).status_code == 200
    # establishments file but do not read: refused by role, whatever the document
    for reader in (staff, token("system", organization=HOSPITAL)):
        assert dmp.get(f"/fhir/DocumentReference/{doc}", headers=reader).status_code == 403
        assert dmp.get("/fhir/DocumentReference/no-such-id", headers=reader).status_code == 403


def test_identity_lookup_needs_the_ins(dmp, token, rec):
    pid, _ = rec
    doctor = token("practitioner", rpps=STRANGER)
    assert dmp.get("/fhir/Patient", headers=doctor).status_code == 400
    found = dmp.get(
        "/fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.10|279035121518989", headers=doctor
    )
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]
    assert dmp.get("/fhir/Patient/_history", headers=doctor).status_code == 403
    assert dmp.get("/fhir/Patient/_history", headers=token("auditor")).status_code == 200


def test_patient_files_only_in_their_space(dmp, token, rec):
    pid, _ = rec
    patient = token("patient", patient=pid)
    r = dmp.post("/fhir/DocumentReference", json=_document(pid, "moi"), headers=patient)
    assert r.status_code == 403
    assert "filing-scope" in r.json()["issue"][0]["diagnostics"]


def test_practitioner_cannot_authorise_themselves(dmp, token, rec):
    pid, _ = rec
    stranger = token("practitioner", rpps=STRANGER)
    assert (
        dmp.post(
            "/fhir/Consent", json=_consent(pid, "permit", STRANGER), headers=stranger
        ).status_code
        == 403
    )


def test_audit_and_notifications_are_read_only(dmp, token, rec):
    pid, _ = rec
    patient = token("patient", patient=pid)
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}", headers=patient).json()
    aid = trail["entry"][0]["resource"]["id"]
    assert dmp.delete(f"/fhir/AuditEvent/{aid}", headers=token("auditor")).status_code == 405
    assert (
        dmp.put(
            f"/fhir/AuditEvent/{aid}", json=trail["entry"][0]["resource"], headers=token("auditor")
        ).status_code
        == 405
    )
