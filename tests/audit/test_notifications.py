from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.communication import Communication

from fhir_server.audit import notifications as n
from fhir_server.auth.actor import AccessMode
from fhir_server.policy import INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX, DocumentFacts

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _code(comm: dict) -> str:
    return comm["category"][0]["coding"][0]["code"]


def test_every_builder_validates() -> None:
    comms = [
        n.record_created("p1", NOW),
        n.first_consultation("p1", NOW, "Dr Martin", "10000000002"),
        n.new_document("p1", NOW, "DocumentReference/d1", "CR de consultation", "Dr Martin"),
        n.emergency_access(
            "p1", NOW, AccessMode.CENTRE_15, "Dr Samu", "10000000007", None, "10000000001"
        ),
        n.embargo_lapsing("p1", NOW, "DocumentReference/d2", datetime(2026, 4, 1, tzinfo=UTC)),
    ]
    for comm in comms:
        Communication.model_validate(comm)
        assert comm["subject"] == {"reference": "Patient/p1"}
        assert comm["recipient"][0] == {"reference": "Patient/p1"}
    assert [_code(c) for c in comms] == [k.value for k in n.NotificationKind]


def test_emergency_notifies_patient_and_treating_physician() -> None:
    comm = n.emergency_access(
        "p1", NOW, AccessMode.BRIS_DE_GLACE, "Dr Urgent", "10000000003", "coma", "10000000001",
        "AuditEvent/ae-9",
    )  # fmt: skip
    assert comm["recipient"][1]["identifier"]["value"] == "10000000001"
    assert "bris de glace" in comm["payload"][0]["contentString"]
    assert "coma" in comm["payload"][0]["contentString"]
    assert {"reference": "AuditEvent/ae-9"} in comm["about"]
    with pytest.raises(ValueError):
        n.emergency_access("p1", NOW, AccessMode.NORMAL, "Dr", None, None, None)


def test_embargo_notice_discloses_no_content() -> None:
    comm = n.embargo_lapsing(
        "p1", NOW, "DocumentReference/d2", datetime(2026, 4, 1, tzinfo=UTC), True
    )
    assert "01/04/2026" in comm["payload"][0]["contentString"]
    assert comm["meta"]["security"][0]["code"] == INVISIBLE_REPRESENTANTS_LEGAUX


def test_no_new_document_notice_for_invisible_documents() -> None:
    assert n.should_notify_new_document(DocumentFacts())
    assert not n.should_notify_new_document(DocumentFacts(labels=frozenset({INVISIBLE_PATIENT})))
    assert not n.should_notify_new_document(
        DocumentFacts(labels=frozenset({INVISIBLE_REPRESENTANTS_LEGAUX}))
    )
