"""TD0.2's "authorisation of the actor": `GET Patient/{id}/$authorisation` tells a
professional their own status for the record, never the patient's Consents; a blocked
professional is answered as for a record that does not exist."""

from __future__ import annotations

import pytest

from tests.access.test_dmp_scenario import _consent
from tests.security.world import FINESS, OTHER_ORG, UNKNOWN, same_answer

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")


def _ask(world, who, patient: str | None = None, headers: dict | None = None):
    url = f"/fhir/Patient/{patient or world.victim}/$authorisation"
    return world.client.get(url, headers=headers or world.as_(who))


def _status(r) -> dict[str, str]:
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Parameters"
    return {p["name"]: p["valueCode"] for p in r.json()["parameter"]}


def test_each_professional_learns_their_own_status(world):
    assert _status(_ask(world, "treating")) == {
        "status": "authorised",
        "basis": "treating-physician",
    }
    assert _status(_ask(world, "authorised")) == {
        "status": "authorised",
        "basis": "authorised-professional",
    }
    assert _status(_ask(world, "stranger")) == {"status": "not-authorised"}
    # the author of documents in the record is not authorised to read it for that
    assert _status(_ask(world, "author")) == {"status": "not-authorised"}


def test_a_care_team_authorisation_names_its_basis(world):
    consent = _consent(world.victim, "permit", "x")
    consent["provision"]["actor"][0]["reference"]["identifier"] = {
        "system": FINESS,
        "value": OTHER_ORG,
    }
    r = world.client.post("/fhir/Consent", json=consent, headers=world.as_("holder"))
    assert r.status_code == 201, r.text
    member = world.token("practitioner", rpps="10000000013", organization=OTHER_ORG)
    assert _status(_ask(world, "", headers=member)) == {
        "status": "authorised",
        "basis": "care-team",
    }


def test_an_emergency_mode_does_not_change_the_status(world):
    """The status is the patient's authorisation (R.1111-41), not what break-glass opens."""
    assert _status(_ask(world, "glass")) == {"status": "not-authorised"}


def test_a_blocked_professional_is_answered_as_for_an_unknown_record(world):
    """A block is the patient's secret: the blocked professional gets, word for word, the
    answer for a Patient nobody holds, as a read of the Patient gives them."""
    blocked = _ask(world, "blocked")
    same_answer(blocked, _ask(world, "blocked", UNKNOWN), world.victim)
    same_answer(blocked, _ask(world, "stranger", UNKNOWN), world.victim)
    assert blocked.status_code == 404
    read = world.client.get(f"/fhir/Patient/{world.victim}", headers=world.as_("blocked"))
    assert read.status_code == 404


@pytest.mark.parametrize("who", ["holder", "insurer", "hospital-system", "auditor"])
def test_only_professionals_ask(world, who):
    assert _ask(world, who).status_code == 403
    # refused from the request alone: the same for a record that does not exist
    assert _ask(world, who, UNKNOWN).status_code == 403


def _notices(world) -> list[str]:
    r = world.client.get(f"/fhir/Communication?patient={world.victim}", headers=world.as_("holder"))
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


def test_the_question_is_in_the_patients_trail_without_a_notice(world):
    before = _notices(world)
    _status(_ask(world, "stranger"))
    _status(_ask(world, "authorised"))
    holder = world.as_("holder")
    events = world.client.get(
        f"/fhir/AuditEvent?patient={world.victim}&_count=200", headers=holder
    ).json()["entry"]
    asked = [
        e["resource"]
        for e in events
        if e["resource"].get("outcomeDesc", "").startswith("not-authorised")
    ]
    assert len(asked) == 1 and asked[0]["outcome"] == "0"
    # not a consultation: no "first consultation" notice to the patient
    assert _notices(world) == before
