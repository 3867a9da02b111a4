"""TD3.1a / TD3.1b: ITI-67 searches as the guide writes them."""

from __future__ import annotations

import pytest

from tests.conftest import INS_TEST_SYSTEM, VALID_INS

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
BY_INS = f"patient.identifier={INS_TEST_SYSTEM}|{VALID_INS}"


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_td31a_lists_current_documents_by_ins(world):
    r = world.client.get(
        f"/fhir/DocumentReference?{BY_INS}&status=current", headers=world.as_("treating")
    )
    assert r.status_code == 200, r.text
    assert set(_ids(r.json())) == {world.plain.id, world.masked.id, world.embargoed.id}


def test_td31b_finds_a_document_by_unique_id_without_status(world):
    r = world.client.get(
        f"/fhir/DocumentReference?{BY_INS}&identifier={world.plain.ident}",
        headers=world.as_("treating"),
    )
    assert r.status_code == 200, r.text
    assert _ids(r.json()) == [world.plain.id]


def test_without_status_nor_identifier_the_search_is_refused(world):
    r = world.client.get(f"/fhir/DocumentReference?{BY_INS}", headers=world.as_("treating"))
    assert r.status_code == 400
    assert "status" in r.text


def test_unknown_parameters_are_refused_unless_lenient(world):
    query = f"/fhir/DocumentReference?{BY_INS}&status=current&colour=blue"
    strict = world.client.get(query, headers=world.as_("treating"))
    assert strict.status_code == 400
    assert "colour" in strict.text
    lenient = world.client.get(
        query, headers={**world.as_("treating"), "prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]


@pytest.mark.parametrize("rtype", ["Patient", "Consent", "AuditEvent", "List"])
def test_every_type_refuses_unknown_parameters(world, rtype):
    query = f"/fhir/{rtype}?patient={world.victim}&colour=blue"
    if rtype == "Patient":
        query = f"/fhir/Patient?identifier={INS_TEST_SYSTEM}|{VALID_INS}&colour=blue"
    r = world.client.get(query, headers=world.as_("holder"))
    assert r.status_code == 400, r.text
    assert "colour" in r.text
