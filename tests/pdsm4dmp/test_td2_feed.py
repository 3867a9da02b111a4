"""TD2 (ITI-65, ITI-105) with the guide's conditional subject `Patient?identifier=...`."""

from __future__ import annotations

import base64

import pytest

from tests.access.test_dmp_scenario import _consent
from tests.conftest import INS_TEST_SYSTEM, VALID_INS, nir_with_key
from tests.pdsm4dmp.guide import FHIR, INS_REF, doc_of, iti65
from tests.security.world import ATTACKER_INS, BLOCKED_INS, cda

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
NOBODY_INS = nir_with_key("2790351215999")  # a valid INS no record holds


def test_iti65_files_into_the_patient_the_conditional_reference_names(world):
    r = world.client.post("/fhir", json=iti65(cda()), headers=world.as_("author"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 3
    doc = doc_of(out)
    assert doc["subject"] == {"reference": f"Patient/{world.victim}"}
    listed = world.client.get(
        f"/fhir/List/{out['entry'][0]['response']['location'].split('/')[1]}",
        headers=world.as_("treating"),
    )
    assert listed.json()["subject"] == {"reference": f"Patient/{world.victim}"}


def test_iti105_takes_the_conditional_subject(world):
    data = cda()
    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": INS_REF},
        "content": [
            {
                "attachment": {
                    "contentType": "application/xml",
                    "data": base64.b64encode(data).decode(),
                }
            }
        ],
    }
    r = world.client.post("/fhir/DocumentReference", json=doc, headers=world.as_("author"))
    assert r.status_code == 201, r.text
    assert r.json()["subject"] == {"reference": f"Patient/{world.victim}"}


def test_a_conditional_subject_naming_nobody_is_422(world):
    unknown = f"Patient?identifier={INS_TEST_SYSTEM}|{NOBODY_INS}"
    r = world.client.post(
        "/fhir", json=iti65(cda(NOBODY_INS), unknown), headers=world.as_("author")
    )
    assert r.status_code == 422, r.text
    assert "matches no Patient" in r.text


def test_a_conditional_subject_the_actor_may_not_see_answers_as_none(world):
    # the victim blocked this professional: its record answers as a Patient nobody holds
    # (same status and text, the INS sent aside)
    hidden = f"Patient?identifier={INS_TEST_SYSTEM}|{VALID_INS}"
    absent = f"Patient?identifier={INS_TEST_SYSTEM}|{NOBODY_INS}"
    blocked = world.as_("blocked")
    a = world.client.post("/fhir", json=iti65(cda(), hidden), headers=blocked)
    b = world.client.post("/fhir", json=iti65(cda(NOBODY_INS), absent), headers=blocked)
    assert a.status_code == b.status_code == 422, a.text
    assert a.text.replace(VALID_INS, "<ins>") == b.text.replace(NOBODY_INS, "<ins>")


def test_a_conditional_reference_naming_several_is_422(world):
    several = "Patient?gender=female&identifier=" + ",".join(
        f"{INS_TEST_SYSTEM}|{ins}" for ins in (ATTACKER_INS, BLOCKED_INS)
    )
    r = world.client.post("/fhir", json=iti65(cda(), several), headers=world.as_("insurer"))
    assert r.status_code == 422, r.text
    assert "several" in r.text


def test_conditional_reference_on_a_plain_create(world):
    # the Consent names its patient by INS: the record is the one holding it
    consent = {**_consent(world.victim, "deny"), "patient": {"reference": INS_REF}}
    r = world.client.post(
        "/fhir/Consent",
        json=consent,
        headers={**world.as_("holder"), **FHIR},
    )
    assert r.status_code == 201, r.text
    assert r.json()["patient"] == {"reference": f"Patient/{world.victim}"}
