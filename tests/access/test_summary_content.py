"""A filed patient summary's treatments, procedures, vaccinations and vital signs, through
HTTP under the DMP's rules: found by the searches FHIR names, governed by their
document's rules, read-only, on every store."""

from __future__ import annotations

import uuid

import pytest

from tests.access.conftest import STRANGER
from tests.access.test_dmp_scenario import _consent
from tests.access.test_structured_content import DOC_AUTHOR, _authorised, _extension, _filed

BDPM = "https://smt.esante.gouv.fr/terminologie-bdpm"
CCAM = "https://smt.esante.gouv.fr/terminologie-ccam"
ATC = "https://smt.esante.gouv.fr/terminologie-atc"
NEW_TYPES = ("MedicationStatement", "Procedure", "Immunization")


def _summary(dmp, token, **params):
    return _filed(dmp, token, name="vsm-body.xml", **params)


def _search(dmp, headers, query):
    return dmp.get(f"/fhir/{query}&_total=accurate", headers=headers)


def _found(dmp, headers, query):
    r = _search(dmp, headers, query)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def test_an_authorised_professional_finds_the_summarys_content(dmp, token):
    pid, doc = _summary(dmp, token)
    assert sorted(_extension(doc, "extracted")) == [
        "AllergyIntolerance: 2",
        "Condition: 2",
        "Immunization: 1",
        "MedicationStatement: 2",
        "Observation: 3",
        "Procedure: 1",
    ]
    assert _extension(doc, "skipped") == [1]
    pro = _authorised(dmp, token, pid)

    treatments = _found(dmp, pro, f"MedicationStatement?patient={pid}")
    assert len(treatments) == 2
    daily = _found(dmp, pro, f"MedicationStatement?subject=Patient/{pid}&code={BDPM}|69999001")
    assert [t["dosage"][0]["timing"]["repeat"]["periodUnit"] for t in daily] == ["d"]
    reason = daily[0]["reasonReference"][0]["reference"]
    condition = dmp.get(f"/fhir/{reason}", headers=pro)
    assert condition.status_code == 200 and condition.json()["code"]["coding"][0]["code"] == "I10"
    # the one still taken began before February 2020; the other ended in December 2023
    early = _found(dmp, pro, f"MedicationStatement?patient={pid}&effective=le2020-02-01")
    assert [t["medicationCodeableConcept"]["coding"][0]["code"] for t in early] == ["69999001"]
    assert len(_found(dmp, pro, f"MedicationStatement?patient={pid}&status=completed")) == 2

    surgery = _found(dmp, pro, f"Procedure?patient={pid}&code={CCAM}|HHFA016")
    assert [p["performedDateTime"] for p in surgery] == ["1998-06-10"]
    assert _found(dmp, pro, f"Procedure?patient={pid}&code={CCAM}|DDAF004") == []
    assert len(_found(dmp, pro, f"Procedure?patient={pid}&date=1998&status=completed")) == 1

    vaccines = _found(dmp, pro, f"Immunization?patient={pid}&vaccine-code={ATC}|J07CA01")
    assert [v["lotNumber"] for v in vaccines] == ["LOT-ESSAI-7"]
    assert vaccines[0]["patient"] == {"reference": f"Patient/{pid}"}
    assert (
        len(_found(dmp, pro, f"Immunization?patient={pid}&date=2021-09-15&status=completed")) == 1
    )

    signs = _found(dmp, pro, f"Observation?patient={pid}&category=vital-signs")
    codes = sorted(o["code"]["coding"][0]["code"] for o in signs)
    assert codes == ["29463-7", "8480-6", "85353-1"]  # two signs and their panel
    panel = next(o for o in signs if o["code"]["coding"][0]["code"] == "85353-1")
    members = _found(dmp, pro, f"Observation?_has:Observation:has-member:_id={panel['id']}")
    assert sorted(o["code"]["coding"][0]["code"] for o in members) == ["29463-7", "8480-6"]

    for resource in (daily[0], surgery[0], vaccines[0], signs[0]):
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        read = dmp.get(path, headers=pro)
        assert read.status_code == 200, read.text
        assert read.json()["meta"]["profile"][0].startswith(
            "https://interop.esante.gouv.fr/ig/fhir/document-core/StructureDefinition/fr-"
        )
    # every read was audited in the patient's record, like a document's
    patient = token("patient", patient=pid)
    trail = dmp.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=patient)
    assert f"Immunization/{vaccines[0]['id']}" in trail.text


@pytest.mark.parametrize("rtype", NEW_TYPES)
def test_an_unknown_search_parameter_is_answered_as_on_other_types(dmp, token, rtype):
    pid, _ = _summary(dmp, token)
    patient = token("patient", patient=pid)
    unknown = dmp.get(f"/fhir/{rtype}?patient={pid}&no-such-param=1", headers=patient)
    usual = dmp.get(f"/fhir/Condition?patient={pid}&no-such-param=1", headers=patient)
    assert unknown.status_code == usual.status_code
    assert unknown.json()["resourceType"] == usual.json()["resourceType"]
    if usual.status_code >= 400:
        assert "no-such-param" in unknown.text


def test_a_blocked_professional_gets_the_answer_documents_give(dmp, token):
    pid, _ = _summary(dmp, token)
    pro = _authorised(dmp, token, pid)
    ids = {
        rtype: _found(dmp, pro, f"{rtype}?patient={pid}")[0]["id"]
        for rtype in (*NEW_TYPES, "Observation")
    }
    patient = token("patient", patient=pid)
    dmp.post("/fhir/Consent", json=_consent(pid, "deny", STRANGER), headers=patient)
    documents = dmp.get(f"/fhir/DocumentReference?patient={pid}&status=current", headers=pro)
    assert documents.status_code == 403
    for rtype, rid in ids.items():
        assert _search(dmp, pro, f"{rtype}?patient={pid}").status_code == 403
        assert dmp.get(f"/fhir/{rtype}/{rid}", headers=pro).status_code == 404
        hidden = dmp.get(f"/fhir/{rtype}?_id={rid}", headers=pro)
        absent = dmp.get(f"/fhir/{rtype}?_id=no-such-{rtype.lower()}", headers=pro)
        assert (hidden.status_code, hidden.text) == (absent.status_code, absent.text)


def test_a_masked_summarys_content_is_hidden_from_a_non_author(dmp, token):
    pid, _ = _summary(dmp, token, **{"security-label": "MASQUE_PS"})
    pro = _authorised(dmp, token, pid)
    author = token("practitioner", rpps=DOC_AUTHOR)
    dmp.post(
        "/fhir/Consent",
        json=_consent(pid, "permit", DOC_AUTHOR),
        headers=token("patient", patient=pid),
    )
    for query in (
        f"MedicationStatement?patient={pid}",
        f"Procedure?patient={pid}",
        f"Immunization?patient={pid}",
        f"Observation?patient={pid}&category=vital-signs",
    ):
        hidden = _search(dmp, pro, query).json()
        assert hidden["total"] == 0 and not hidden.get("entry"), query
        seen = _found(dmp, author, query)
        assert seen, query
        rid, rtype = seen[0]["id"], seen[0]["resourceType"]
        assert dmp.get(f"/fhir/{rtype}/{rid}", headers=author).status_code == 200
        # hidden and absent answer alike (the answer names the id asked for)
        absent_id = str(uuid.uuid4())
        by_id = dmp.get(f"/fhir/{rtype}/{rid}", headers=pro)
        unknown = dmp.get(f"/fhir/{rtype}/{absent_id}", headers=pro)
        assert by_id.status_code == unknown.status_code == 404
        assert by_id.text.replace(rid, "ID") == unknown.text.replace(absent_id, "ID")


@pytest.mark.parametrize("rtype", NEW_TYPES)
def test_the_summarys_content_is_read_only(dmp, token, rtype):
    pid, _ = _summary(dmp, token)
    patient = token("patient", patient=pid)
    resource = _found(dmp, patient, f"{rtype}?patient={pid}")[0]
    url = f"/fhir/{rtype}/{resource['id']}"
    for method, path, kwargs in (
        ("post", f"/fhir/{rtype}", {"json": resource}),
        ("put", url, {"json": resource}),
        ("patch", url, {"json": []}),
        ("delete", url, {}),
    ):
        r = getattr(dmp, method)(path, headers=patient, **kwargs)
        assert r.status_code == 405, (method, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    again = dmp.get(url, headers=patient).json()
    assert again["meta"]["versionId"] == resource["meta"]["versionId"]
