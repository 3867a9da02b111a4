"""The DMP's access rules as a newcomer would try them: tokens for
a patient, a treating physician, a stranger doctor and an insurer; authorisation by the
patient, masking, break-glass, and the patient reading every access in their history."""

from __future__ import annotations

import sqlite3
import uuid

import orjson
import pytest

from fhir_server.cli import main as cli
from fhir_server.policy.model import CLASS_SYSTEM, VISIBILITY_SYSTEM
from tests.access.conftest import AUTHOR, EMERGENCY_DOC, FINESS, HOSPITAL, RPPS, STRANGER, TREATING
from tests.conftest import INS_TEST_SYSTEM, VALID_INS

LOINC = "http://loinc.org"


def _patient() -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": INS_TEST_SYSTEM, "value": VALID_INS}],
        "name": [{"family": "PAT-TROIS", "given": ["Dominique"]}],
        "gender": "female",
        "birthDate": "1979-03-28",
        "generalPractitioner": [{"identifier": {"system": RPPS, "value": TREATING}}],
    }


def _document(pid: str, title: str, *labels: str) -> dict:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "contained": [
            {
                "resourceType": "Practitioner",
                "id": "author",
                "identifier": [{"system": RPPS, "value": AUTHOR}],
            }
        ],
        "author": [{"reference": "#author"}],
        "custodian": {"identifier": {"system": FINESS, "value": HOSPITAL}},
        "type": {"coding": [{"system": LOINC, "code": "11490-0"}]},
        "category": [{"coding": [{"system": CLASS_SYSTEM, "code": "10"}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "securityLabel": [{"coding": [{"system": VISIBILITY_SYSTEM, "code": c}]} for c in labels],
        "content": [
            {"attachment": {"contentType": "text/plain", "title": title, "data": "dGV4dA=="}}
        ],
    }


def _consent(pid: str, kind: str, rpps: str | None = None, purpose: str | None = None) -> dict:
    provision: dict = {"type": kind}
    if rpps:
        provision["actor"] = [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
                            "code": "PROV",
                        }
                    ]
                },
                "reference": {"identifier": {"system": RPPS, "value": rpps}},
            }
        ]
    if purpose:
        provision["purpose"] = [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}
        ]
    return {
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
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": provision,
    }


@pytest.fixture
def record(dmp, token):
    # the Assurance Maladie opens the record with the declared treating physician
    insurer = token("assurance-maladie")
    r = dmp.post("/fhir/Patient", json=_patient(), headers=insurer)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    author = token("practitioner", rpps=AUTHOR, organization=HOSPITAL)
    plain = dmp.post(
        "/fhir/DocumentReference", json=_document(pid, "Lettre de sortie"), headers=author
    )
    assert plain.status_code == 201, plain.text
    masked = dmp.post(
        "/fhir/DocumentReference",
        json=_document(pid, "Compte rendu masqué", "MASQUE_PS"),
        headers=author,
    )
    assert masked.status_code == 201, masked.text
    return pid, plain.json()["id"], masked.json()["id"]


def _ids(bundle: dict) -> set[str]:
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == "match"
    }


def test_no_token_is_401_and_metadata_is_open(dmp):
    r = dmp.get("/fhir/Patient/x")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["resourceType"] == "OperationOutcome"
    assert dmp.get("/fhir/metadata").status_code == 200
    assert dmp.get("/health").status_code == 200
    bad = dmp.get("/fhir/Patient/x", headers={"authorization": "Bearer abc.def.ghi"})
    assert bad.status_code == 401


def test_the_newcomer_walkthrough(dmp, token, record, tmp_path):
    pid, plain, masked = record
    patient = token("patient", patient=pid)
    treating = token("practitioner", rpps=TREATING)
    stranger = token("practitioner", rpps=STRANGER)
    author = token("practitioner", rpps=AUTHOR)
    insurer = token("insurer")
    cnam = token("assurance-maladie", organization="999999999")

    # the stranger is refused until the patient authorises them: a search of the record
    # answers 403, a document by id answers as if it did not exist
    assert dmp.get(f"/fhir/DocumentReference/{plain}", headers=stranger).status_code == 404
    search = f"/fhir/DocumentReference?patient={pid}&status=current"
    assert dmp.get(search, headers=stranger).status_code == 403
    for rpps in (STRANGER, AUTHOR):
        r = dmp.post("/fhir/Consent", json=_consent(pid, "permit", rpps), headers=patient)
        assert r.status_code == 201, r.text
    assert dmp.get(f"/fhir/DocumentReference/{plain}", headers=stranger).status_code == 200

    # the masked document: hidden from the authorised doctor (404 and absent from search),
    # visible to its author and to the treating physician
    assert dmp.get(f"/fhir/DocumentReference/{masked}", headers=stranger).status_code == 404
    assert _ids(dmp.get(search, headers=stranger).json()) == {plain}
    assert dmp.get(f"/fhir/DocumentReference/{masked}", headers=author).status_code == 200
    assert dmp.get(f"/fhir/DocumentReference/{masked}", headers=treating).status_code == 200
    assert _ids(dmp.get(search, headers=treating).json()) == {plain, masked}

    # insurers are refused outright; Assurance Maladie reads no record
    assert dmp.get(f"/fhir/DocumentReference/{plain}", headers=insurer).status_code == 403
    assert dmp.get(f"/fhir/DocumentReference/{plain}", headers=cnam).status_code == 403

    # break-glass: refused without a justification, allowed with one, MASQUE_PS still hidden
    glass = token("practitioner", rpps=EMERGENCY_DOC)
    no_why = dmp.get(
        f"/fhir/DocumentReference/{plain}", headers={**glass, "X-Access-Mode": "bris_de_glace"}
    )
    assert no_why.status_code == 403
    why = {
        **glass,
        "X-Access-Mode": "bris_de_glace",
        "X-Access-Justification": "patient inconscient aux urgences",
    }
    assert dmp.get(f"/fhir/DocumentReference/{plain}", headers=why).status_code == 200
    assert dmp.get(f"/fhir/DocumentReference/{masked}", headers=why).status_code == 404

    # the patient reads every one of these accesses, refused ones included
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}&_count=1000", headers=patient)
    assert trail.status_code == 200, trail.text
    events = [e["resource"] for e in trail.json()["entry"]]
    by_rule = {e["outcomeDesc"].split(":")[0] for e in events}
    assert {"no-authorisation", "justification-required", "emergency-bris_de_glace"} <= by_rule
    glass_events = [
        e
        for e in events
        if e["purposeOfEvent"][0]["coding"][0]["code"] == "bris_de_glace" and e["outcome"] == "0"
    ]
    assert glass_events
    justification = glass_events[0]["entity"][0]["detail"][0]["valueString"]
    assert justification == "patient inconscient aux urgences"
    assert any(e["outcome"] == "4" for e in events)

    # and the notifications: record created, first consultations, emergency access
    notes = dmp.get(f"/fhir/Communication?patient={pid}&_count=1000", headers=patient).json()
    kinds = [e["resource"]["category"][0]["coding"][0]["code"] for e in notes["entry"]]
    assert "record-created" in kinds and "emergency-access" in kinds
    assert kinds.count("first-consultation") >= 2  # the stranger, the emergency doctor
    assert "new-document" in kinds

    # nobody else reads the trail
    assert dmp.get(f"/fhir/AuditEvent?patient={pid}", headers=stranger).status_code == 403

    # the chain holds
    from fhir_server.operations.verify_audit import verify_audit

    app_store = dmp.app.state.ctx.store
    report = dmp.portal.call(verify_audit, app_store)
    assert report.broken is None
    assert report.checked >= len(events)


def test_verify_audit_catches_an_edit(dmp, token, record, tmp_path, capsys, store_kind):
    if store_kind != "sqlite":
        pytest.skip("edits the SQLite file directly; the chain logic is the same on MongoDB")
    pid, _, _ = record
    dmp.get(f"/fhir/Patient/{pid}", headers=token("patient", patient=pid))
    assert cli(["verify-audit", "--data-dir", str(tmp_path)]) == 0
    db = sqlite3.connect(tmp_path / "dmp-fhir.sqlite3")
    rid, content = db.execute(
        'SELECT rid, content FROM "AuditEvent" ORDER BY rid LIMIT 1 OFFSET 1'
    ).fetchone()
    event = orjson.loads(content)
    event["outcomeDesc"] = "edited"
    db.execute('UPDATE "AuditEvent" SET content = ? WHERE rid = ?', (orjson.dumps(event), rid))
    db.commit()
    capsys.readouterr()
    assert cli(["verify-audit", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at position 2" in out and event["id"] in out and "altered" in out
    # the same edit made in both copies is still caught (the hash no longer matches)
    db.execute(
        'UPDATE "AuditEvent_history" SET content = ? WHERE id = ?',
        (orjson.dumps(event), event["id"]),
    )
    db.commit()
    assert cli(["verify-audit", "--data-dir", str(tmp_path)]) == 1
    # and a removed record is reported as missing
    db.execute('DELETE FROM "AuditEvent" WHERE rid = ?', (rid,))
    db.execute("DELETE FROM chain_member WHERE position = 2")
    db.commit()
    db.close()
    capsys.readouterr()
    assert cli(["verify-audit", "--data-dir", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().out
