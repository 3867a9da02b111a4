from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from fhir_server.audit import ServerIdentity, build_audit_event, outcome_of
from fhir_server.audit.events import ACCESS_MODE_SYSTEM
from fhir_server.auth.actor import AccessContext, AccessMode, Actor

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
DR = Actor("practitioner", "dr", rpps="10000000001", profession="10", organization="750000001")
ALICE = Actor("patient", "alice", patient="p1")


def test_break_glass_read_of_a_document() -> None:
    event = build_audit_event(
        interaction="read",
        recorded=NOW,
        status=200,
        rule="emergency-bris_de_glace",
        reason="read permitted",
        actor=DR,
        access=AccessContext(AccessMode.BRIS_DE_GLACE, "patient inconscient"),
        patient_id="p1",
        resource="DocumentReference/d1/_history/2",
        transaction="ITI-68",
        client_address="192.0.2.10",
        server=ServerIdentity("dmp-fhir", "https://dmp.example/fhir", "192.0.2.1"),
        event_id="ae-1",
    )
    AuditEvent.model_validate(event)
    assert event["type"]["code"] == "rest"
    assert [c["code"] for c in event["subtype"]] == ["read", "ITI-68"]
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert event["outcomeDesc"].startswith("emergency-bris_de_glace")
    assert event["purposeOfEvent"][0]["coding"][0] == {
        "system": ACCESS_MODE_SYSTEM,
        "code": "bris_de_glace",
        "display": "Accès en bris de glace",
    }
    user, org, server = event["agent"]
    assert user["requestor"] is True and server["requestor"] is False
    assert user["who"]["identifier"]["value"] == "10000000001"
    assert user["network"] == {"address": "192.0.2.10", "type": "2"}
    assert org["who"]["identifier"]["value"] == "750000001"
    patient, document = event["entity"]
    assert patient["what"]["reference"] == "Patient/p1"
    assert document["what"]["reference"] == "DocumentReference/d1/_history/2"
    assert patient["detail"] == [{"type": "justification", "valueString": "patient inconscient"}]
    assert event["source"]["observer"]["identifier"]["value"] == "https://dmp.example/fhir"


@pytest.mark.parametrize(
    ("interaction", "action"),
    [("create", "C"), ("update", "U"), ("patch", "U"), ("delete", "D"), ("search-type", "E")],
)
def test_actions(interaction: str, action: str) -> None:
    event = build_audit_event(
        interaction=interaction, recorded=NOW, status=403, rule="consent-block", actor=DR
    )
    AuditEvent.model_validate(event)
    assert (event["action"], event["outcome"]) == (action, "4")


def test_search_by_patient_and_unauthenticated() -> None:
    event = build_audit_event(
        interaction="search-type",
        recorded=NOW,
        status=200,
        rule="holder",
        actor=ALICE,
        patient_id="p1",
        query="DocumentReference?patient=p1&status=current",
        transaction="ITI-67",
    )
    AuditEvent.model_validate(event)
    assert event["agent"][0]["who"] == {"reference": "Patient/p1"}
    query = event["entity"][1]
    assert base64.b64decode(query["query"]).decode().startswith("DocumentReference?")
    anonymous = build_audit_event(
        interaction="read", recorded=NOW, status=401, rule="unauthenticated", actor=None
    )
    AuditEvent.model_validate(anonymous)
    assert anonymous["agent"][0]["who"]["display"] == "unauthenticated client"


def test_system_agent_and_outcomes() -> None:
    lab = Actor("system", "lab", organization="750000002")
    event = build_audit_event(
        interaction="create",
        recorded=NOW,
        status=500,
        rule="error",
        actor=lab,
        transaction="ITI-65",
    )
    AuditEvent.model_validate(event)
    assert event["agent"][0]["type"]["coding"][0]["code"] == "110150"
    assert (outcome_of(201), outcome_of(404), outcome_of(503)) == ("0", "4", "8")


def test_refuses_naive_time_and_unknown_interaction() -> None:
    with pytest.raises(ValueError):
        build_audit_event(
            interaction="read", recorded=datetime(2026, 1, 1), status=200, rule="x", actor=DR
        )
    with pytest.raises(ValueError):
        build_audit_event(interaction="peek", recorded=NOW, status=200, rule="x", actor=DR)
