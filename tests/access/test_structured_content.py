"""A filed lab report's structured content (DiagnosticReport, Observations), through HTTP,
under the DMP's rules: its document's rules govern it, on every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.access.conftest import HOSPITAL, STRANGER
from tests.access.test_dmp_scenario import _consent
from tests.ingest.test_mhd import provide_bundle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cda"
CDA = {"content-type": "application/hl7-cda+xml"}
PATCH = "application/json-patch+json"
TRE_A07 = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
# the author of the fixtures' documents (CDA header author)
DOC_AUTHOR = "810000000001"
TSH = "http://loinc.org|3016-3"


def _file(dmp, token, name="cr-bio-body.xml", **params):
    data = (FIXTURES / name).read_bytes()
    system = token("system", organization=HOSPITAL)
    return dmp.post(
        "/fhir/DocumentReference/$import-cda",
        content=data,
        params=params,
        headers={**system, **CDA},
    )


def _filed(dmp, token, **params):
    r = _file(dmp, token, **params)
    assert r.status_code == 201, r.text
    return r.json()["subject"]["reference"].split("/")[1], r.json()


def _authorised(dmp, token, pid):
    patient = token("patient", patient=pid)
    r = dmp.post("/fhir/Consent", json=_consent(pid, "permit", STRANGER), headers=patient)
    assert r.status_code == 201, r.text
    return token("practitioner", rpps=STRANGER)


def _observations(dmp, pid, headers, query=""):
    return dmp.get(f"/fhir/Observation?patient={pid}&_total=accurate{query}", headers=headers)


def _extension(doc, name):
    parts = next(
        e["extension"] for e in doc["extension"] if e["url"].endswith("/structured-content")
    )
    return [
        next(v for k, v in p.items() if k.startswith("value")) for p in parts if p["url"] == name
    ]


def test_the_filing_says_what_was_extracted_and_skipped(dmp, token):
    _, doc = _filed(dmp, token)
    assert sorted(_extension(doc, "extracted")) == ["DiagnosticReport: 1", "Observation: 9"]
    assert _extension(doc, "skipped") == [2]
    reasons = " ".join(_extension(doc, "skipped-reason"))
    assert "'huit' is not a number" in reasons and "unknown entry template" in reasons
    assert any("20241314081500" in w for w in _extension(doc, "warning"))


def test_an_authorised_professional_sees_the_results_then_blocked_sees_none(dmp, token):
    pid, doc = _filed(dmp, token)
    pro = _authorised(dmp, token, pid)
    r = _observations(dmp, pid, pro, f"&code={TSH}&_sort=-date")
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["total"] == 1
    tsh = found["entry"][0]["resource"]
    assert tsh["valueQuantity"] == {
        "value": 1.95,
        "unit": "m[IU]/L",
        "system": "http://unitsofmeasure.org",
        "code": "m[IU]/L",
    }
    assert tsh["subject"] == {"reference": f"Patient/{pid}"}
    source = next(e for e in tsh["extension"] if e["url"].endswith("/source-document"))
    assert source["valueReference"] == {"reference": f"DocumentReference/{doc['id']}"}
    assert _observations(dmp, pid, pro).json()["total"] == 9
    assert dmp.get(f"/fhir/Observation/{tsh['id']}", headers=pro).status_code == 200

    reports = dmp.get(f"/fhir/DiagnosticReport?patient={pid}", headers=pro).json()
    report = reports["entry"][0]["resource"]
    assert report["code"]["coding"][0]["code"] == "11502-2"
    r = dmp.get(
        f"/fhir/DiagnosticReport?_id={report['id']}&patient={pid}&_include=DiagnosticReport:result",
        headers=pro,
    )
    included = [e["resource"] for e in r.json()["entry"] if e["search"]["mode"] == "include"]
    assert [o["id"] for o in included] == [report["result"][0]["reference"].split("/")[1]]
    r = dmp.get(
        f"/fhir/Observation?patient={pid}&code=http://loinc.org|18719-5"
        "&_revinclude=DiagnosticReport:result",
        headers=pro,
    )
    kinds = sorted(e["resource"]["resourceType"] for e in r.json()["entry"])
    assert kinds == ["DiagnosticReport", "Observation"]
    # by its id alone, the report names its record
    r = dmp.get(
        f"/fhir/DiagnosticReport?_id={report['id']}&_include=DiagnosticReport:result", headers=pro
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["entry"]) == 2
    unknown = dmp.get("/fhir/DiagnosticReport?_id=no-such-report", headers=pro)
    assert unknown.status_code == 403

    patient = token("patient", patient=pid)
    dmp.post("/fhir/Consent", json=_consent(pid, "deny", STRANGER), headers=patient)
    assert _observations(dmp, pid, pro).status_code == 403
    assert dmp.get(f"/fhir/DiagnosticReport?patient={pid}", headers=pro).status_code == 403
    assert dmp.get(f"/fhir/Observation/{tsh['id']}", headers=pro).status_code == 404
    by_id = dmp.get(f"/fhir/DiagnosticReport?_id={report['id']}", headers=pro)
    assert (by_id.status_code, by_id.text) == (
        unknown.status_code,
        unknown.text,
    )
    # the reads and searches were audited in the patient's record
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=patient).json()
    queries = [e["resource"].get("entity", [{}])[-1] for e in trail["entry"]]
    assert any(f"Observation/{tsh['id']}" in str(q) for q in queries)


def test_a_masked_reports_results_are_hidden_from_an_authorised_non_author(dmp, token):
    pid, _ = _filed(dmp, token, **{"security-label": "MASQUE_PS"})
    pro = _authorised(dmp, token, pid)
    hidden = _observations(dmp, pid, pro).json()
    assert hidden["total"] == 0 and not hidden.get("entry")
    reports = dmp.get(f"/fhir/DiagnosticReport?patient={pid}&_total=accurate", headers=pro)
    assert reports.json()["total"] == 0
    # the author sees them, by search and by id
    author = token("practitioner", rpps=DOC_AUTHOR)
    dmp.post(
        "/fhir/Consent",
        json=_consent(pid, "permit", DOC_AUTHOR),
        headers=token("patient", patient=pid),
    )
    seen = _observations(dmp, pid, author).json()
    assert seen["total"] == 9
    some = seen["entry"][0]["resource"]["id"]
    assert dmp.get(f"/fhir/Observation/{some}", headers=author).status_code == 200
    # hidden and absent answer alike
    assert dmp.get(f"/fhir/Observation/{some}", headers=pro).status_code == 404
    hidden_by_id = dmp.get(f"/fhir/Observation?_id={some}", headers=pro)
    unknown = dmp.get("/fhir/Observation?_id=no-such-observation", headers=pro)
    assert (hidden_by_id.status_code, hidden_by_id.text) == (unknown.status_code, unknown.text)


def test_masking_and_unmasking_the_document_carries_to_its_results(dmp, token):
    pid, doc = _filed(dmp, token)
    pro = _authorised(dmp, token, pid)
    patient = token("patient", patient=pid)
    tsh = _observations(dmp, pid, pro, f"&code={TSH}").json()["entry"][0]["resource"]["id"]
    mask = [
        {
            "op": "add",
            "path": "/securityLabel/-",
            "value": {"coding": [{"system": TRE_A07, "code": "MASQUE_PS"}]},
        }
    ]
    headers = {**patient, "content-type": PATCH}
    r = dmp.patch(f"/fhir/DocumentReference/{doc['id']}", json=mask, headers=headers)
    assert r.status_code == 200, r.text
    assert _observations(dmp, pid, pro).json()["total"] == 0
    assert dmp.get(f"/fhir/Observation/{tsh}", headers=pro).status_code == 404
    # the server's account of the extraction stays, and cannot be rewritten by a client
    assert _extension(r.json(), "skipped") == [2]
    at = next(i for i, e in enumerate(r.json()["extension"]) if "structured-content" in e["url"])
    forged = [{"op": "replace", "path": f"/extension/{at}/extension/0/valueString", "value": "x"}]
    refused = dmp.patch(f"/fhir/DocumentReference/{doc['id']}", json=forged, headers=headers)
    assert refused.status_code >= 400, refused.text
    labels = r.json()["securityLabel"]
    unmask = [{"op": "remove", "path": f"/securityLabel/{len(labels) - 1}"}]
    r = dmp.patch(f"/fhir/DocumentReference/{doc['id']}", json=unmask, headers=headers)
    assert r.status_code == 200, r.text
    assert _observations(dmp, pid, pro).json()["total"] == 9
    assert dmp.get(f"/fhir/Observation/{tsh}", headers=pro).status_code == 200


def test_deleting_the_document_deletes_its_results(dmp, token):
    pid, doc = _filed(dmp, token)
    author = token("practitioner", rpps=DOC_AUTHOR)
    patient = token("patient", patient=pid)
    dmp.post("/fhir/Consent", json=_consent(pid, "permit", DOC_AUTHOR), headers=patient)
    tsh = _observations(dmp, pid, author, f"&code={TSH}").json()["entry"][0]["resource"]["id"]
    r = dmp.delete(f"/fhir/DocumentReference/{doc['id']}", headers=author)
    assert r.status_code == 204, r.text
    assert _observations(dmp, pid, author).json()["total"] == 0
    assert (
        dmp.get(f"/fhir/DiagnosticReport?patient={pid}&_total=accurate", headers=author).json()[
            "total"
        ]
        == 0
    )
    assert dmp.get(f"/fhir/Observation/{tsh}", headers=author).status_code in (404, 410)


def test_refiling_creates_nothing_new(dmp, token):
    pid, doc = _filed(dmp, token)
    patient = token("patient", patient=pid)
    before = _observations(dmp, pid, patient).json()
    again = _file(dmp, token)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == doc["id"]
    after = _observations(dmp, pid, patient).json()
    assert after["total"] == before["total"] == 9
    ids = {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in after["entry"]}
    assert ids == {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in before["entry"]}


def test_iti65_files_the_structured_content_too(dmp, token):
    data = (FIXTURES / "cr-bio-body.xml").read_bytes()
    system = token("system", organization=HOSPITAL)
    r = dmp.post("/fhir", json=provide_bundle(data), headers=system)
    assert r.status_code == 200, r.text
    doc_ref = next(
        e["response"]["location"]
        for e in r.json()["entry"]
        if e["response"]["location"].startswith("DocumentReference/")
    )
    doc_id = doc_ref.split("/")[1]
    patient_ref = next(
        e["response"]["location"]
        for e in r.json()["entry"]
        if e["response"]["location"].startswith("Patient/")
    )
    pid = patient_ref.split("/")[1]
    patient = token("patient", patient=pid)
    found = _observations(dmp, pid, patient, f"&code={TSH}").json()
    assert found["total"] == 1
    tsh = found["entry"][0]["resource"]
    source = next(e for e in tsh["extension"] if e["url"].endswith("/source-document"))
    assert source["valueReference"]["reference"] == f"DocumentReference/{doc_id}"
    doc = dmp.get(f"/fhir/DocumentReference/{doc_id}", headers=patient).json()
    assert _extension(doc, "skipped") == [2]


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_structured_content_is_read_only(dmp, token, method):
    pid, _ = _filed(dmp, token)
    patient = token("patient", patient=pid)
    obs = _observations(dmp, pid, patient).json()["entry"][0]["resource"]
    url = "/fhir/Observation" if method == "post" else f"/fhir/Observation/{obs['id']}"
    kwargs = {"json": [] if method == "patch" else obs} if method != "delete" else {}
    r = getattr(dmp, method)(url, headers=patient, **kwargs)
    assert r.status_code == 405, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    again = dmp.get(f"/fhir/Observation/{obs['id']}", headers=patient).json()
    assert again["meta"]["versionId"] == obs["meta"]["versionId"]


def test_invisible_to_the_patient_hides_the_results_and_their_trail(dmp, token):
    pid, _ = _filed(dmp, token, **{"security-label": "INVISIBLE_PATIENT"})
    patient = token("patient", patient=pid)
    hidden = _observations(dmp, pid, patient).json()
    assert hidden["total"] == 0 and not hidden.get("entry")
    pro = _authorised(dmp, token, pid)
    seen = _observations(dmp, pid, pro).json()
    assert seen["total"] == 9
    some = seen["entry"][0]["resource"]["id"]
    assert dmp.get(f"/fhir/Observation/{some}", headers=pro).status_code == 200
    assert dmp.get(f"/fhir/Observation/{some}", headers=patient).status_code == 404
    # the patient's trail does not name what is hidden from them
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=patient)
    assert trail.status_code == 200 and trail.json().get("entry")
    assert some not in trail.text


def test_a_patient_summarys_problems_and_allergies_follow_its_rules(dmp, token):
    pid, doc = _filed(dmp, token, name="vsm-body.xml", **{"security-label": "MASQUE_PS"})
    assert "AllergyIntolerance: 2" in _extension(doc, "extracted")
    patient = token("patient", patient=pid)
    conditions = dmp.get(
        f"/fhir/Condition?patient={pid}&clinical-status=remission&_total=accurate",
        headers=patient,
    ).json()
    assert conditions["total"] == 1
    assert conditions["entry"][0]["resource"]["code"]["coding"][0]["code"] == "I10"
    allergies = dmp.get(f"/fhir/AllergyIntolerance?patient={pid}", headers=patient).json()
    assert {e["resource"]["patient"]["reference"] for e in allergies["entry"]} == {f"Patient/{pid}"}
    pro = _authorised(dmp, token, pid)
    for rtype in ("Condition", "AllergyIntolerance"):
        hidden = dmp.get(f"/fhir/{rtype}?patient={pid}&_total=accurate", headers=pro).json()
        assert hidden["total"] == 0 and not hidden.get("entry")


def test_destroying_a_record_destroys_its_structured_content(dmp, token):
    from dataclasses import replace
    from datetime import timedelta

    from fhir_server.operations.housekeeping import housekeeping

    pid, _ = _filed(dmp, token)
    patient = token("patient", patient=pid)
    ids = [e["resource"]["id"] for e in _observations(dmp, pid, patient).json()["entry"]]
    assert len(ids) == 9
    closed = dmp.post(f"/fhir/Patient/{pid}/$close", headers=patient)
    assert closed.status_code == 200, closed.text
    ctx = dmp.app.state.ctx
    later = ctx.clock() + timedelta(days=3653 + 2)
    report = dmp.portal.call(housekeeping, replace(ctx, clock=lambda: later))
    assert report.destroyed == [pid]
    for oid in ids:
        assert dmp.portal.call(ctx.store.read, "Observation", oid) is None
        assert dmp.portal.call(ctx.store.vread, "Observation", oid, 1) is None
