from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from fhir.resources.R4B.auditevent import AuditEvent

from fhir_server.audit import GENESIS, HASH_URL, PREVIOUS_URL, build_audit_event, link, verify_chain
from fhir_server.auth.actor import Actor

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
DR = Actor("practitioner", "dr", rpps="10000000001")


def chain(n: int = 5) -> tuple[list[dict], str]:
    events, previous = [], GENESIS
    for i in range(n):
        event = build_audit_event(
            interaction="read",
            recorded=T0 + timedelta(seconds=i),
            status=200,
            rule="treating-physician",
            actor=DR,
            patient_id="p1",
            resource=f"DocumentReference/d{i}",
            event_id=f"ae-{i}",
        )
        event, previous = link(event, previous)
        events.append(event)
    return events, previous


def test_intact_chain_verifies_and_validates() -> None:
    events, head = chain()
    assert verify_chain(events) is None
    assert verify_chain(events, expected_head=head) is None
    for event in events:
        AuditEvent.model_validate(event)
    urls = [e["url"] for e in events[1]["extension"]]
    assert urls == [PREVIOUS_URL, HASH_URL]


def test_store_metadata_does_not_break_the_chain() -> None:
    events, _ = chain()
    events[2]["meta"] = {"versionId": "1", "lastUpdated": "2026-03-15T12:00:03Z"}
    assert verify_chain(events) is None


def test_altered_event_detected() -> None:
    events, _ = chain()
    events[2]["outcome"] = "4"
    broken = verify_chain(events)
    assert broken is not None and (broken.index, broken.reason) == (2, "altered")


def test_altered_and_rehashed_event_detected_at_the_next() -> None:
    events, _ = chain()
    forged = copy.deepcopy(events[2])
    forged["entity"][1]["what"]["reference"] = "DocumentReference/other"
    previous = next(e["valueString"] for e in forged["extension"] if e["url"] == PREVIOUS_URL)
    events[2], _ = link(forged, previous)
    broken = verify_chain(events)
    assert broken is not None and (broken.index, broken.reason) == (3, "missing")


def test_deleted_event_detected() -> None:
    events, _ = chain()
    del events[2]
    broken = verify_chain(events)
    assert broken is not None and (broken.index, broken.reason) == (2, "missing")
    first_gone = chain()[0][1:]
    broken = verify_chain(first_gone)
    assert broken is not None and (broken.index, broken.reason) == (0, "missing")


def test_deleted_tail_detected_with_head() -> None:
    events, head = chain()
    broken = verify_chain(events[:-1], expected_head=head)
    assert broken is not None and (broken.index, broken.reason) == (4, "missing")


def test_reordered_events_detected() -> None:
    events, _ = chain()
    events[1], events[2] = events[2], events[1]
    broken = verify_chain(events)
    assert broken is not None and (broken.index, broken.reason) == (1, "reordered")


def test_unchained_event_detected() -> None:
    events, _ = chain()
    events[3].pop("extension")
    broken = verify_chain(events)
    assert broken is not None and (broken.index, broken.reason) == (3, "unchained")


def test_segment_verification() -> None:
    events, _ = chain()
    start = next(e["valueString"] for e in events[2]["extension"] if e["url"] == PREVIOUS_URL)
    assert verify_chain(events[2:], start_hash=start) is None
