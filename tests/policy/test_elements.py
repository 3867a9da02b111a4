"""The per-type element tables: what a change of a stored resource amounts to (pure)."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError
from fhir_server.fhir.extensions import CLOSED_AT_URL, FILED_AT_URL, IS_ARCHIVED_URL
from fhir_server.policy.elements import carry_server_fields, check_change, creation_actions
from fhir_server.policy.model import VISIBILITY_SYSTEM, Action

MASK = {"coding": [{"system": VISIBILITY_SYSTEM, "code": "MASQUE_PS"}]}
FILED = {"url": FILED_AT_URL, "valueInstant": "2026-01-01T00:00:00Z"}
DOC = {
    "resourceType": "DocumentReference",
    "id": "d",
    "status": "current",
    "subject": {"reference": "Patient/p"},
    "description": "lettre",
    "extension": [FILED],
}
PATIENT = {
    "resourceType": "Patient",
    "id": "p",
    "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1"}],
    "name": [{"family": "A"}],
    "active": True,
}


def _refusal(rtype, before, after) -> int:
    with pytest.raises(FhirError) as info:
        check_change(rtype, before, after)
    return info.value.status


@pytest.mark.parametrize(
    ("rtype", "before", "after", "status"),
    [
        ("DocumentReference", DOC, {**DOC, "subject": {"reference": "Patient/q"}}, 422),
        ("DocumentReference", DOC, {**DOC, "description": "autre"}, 405),
        ("DocumentReference", DOC, {**DOC, "status": "entered-in-error"}, 422),
        (
            "DocumentReference",
            DOC,
            {**DOC, "extension": [{**FILED, "valueInstant": "2001-01-01T00:00:00Z"}]},
            422,
        ),
        ("Patient", PATIENT, {**PATIENT, "identifier": []}, 405),
        ("Patient", PATIENT, {**PATIENT, "active": False}, 422),
        (
            "Patient",
            PATIENT,
            {**PATIENT, "extension": [{"url": CLOSED_AT_URL, "valueDateTime": "2001-01-01"}]},
            422,
        ),
        (
            "Consent",
            {"resourceType": "Consent", "patient": {"reference": "Patient/p"}},
            {"resourceType": "Consent", "patient": {"reference": "Patient/q"}},
            422,
        ),
        ("Binary", {"data": "YQ=="}, {"data": "Yg=="}, 405),
        (
            "Binary",
            {"securityContext": {"reference": "DocumentReference/d"}},
            {"securityContext": {"reference": "DocumentReference/e"}},
            422,
        ),
        (
            "List",
            {"subject": {"reference": "Patient/p"}},
            {"subject": {"reference": "Patient/q"}},
            422,
        ),
    ],
)
def test_changes_refused_for_everyone(rtype, before, after, status):
    assert _refusal(rtype, before, after) == status


def test_what_a_change_amounts_to():
    assert check_change("DocumentReference", DOC, {**DOC, "securityLabel": [MASK]}) == [Action.MASK]
    assert check_change("DocumentReference", {**DOC, "securityLabel": [MASK]}, DOC) == [
        Action.UNMASK
    ]
    archived = {**DOC, "extension": [FILED, {"url": IS_ARCHIVED_URL, "valueBoolean": True}]}
    assert check_change("DocumentReference", DOC, archived) == [Action.PATCH_METADATA]
    gp = {"generalPractitioner": [{"identifier": {"value": "10000000001"}}]}
    assert check_change("Patient", PATIENT, {**PATIENT, **gp}) == [Action.DESIGNATE_TREATING]
    assert check_change("Patient", PATIENT, {**PATIENT, "name": [{"family": "B"}]}) == [
        Action.WRITE_PATIENT
    ]
    assert check_change("DocumentReference", DOC, DOC) == []


def test_opening_a_record_with_a_treating_physician_is_a_designation():
    gp = {"generalPractitioner": [{"identifier": {"value": "10000000001"}}]}
    assert creation_actions("Patient", {**PATIENT, **gp}) == [Action.DESIGNATE_TREATING]
    assert creation_actions("Patient", PATIENT) == []


def test_server_fields_left_out_carry_over():
    sent = {k: v for k, v in DOC.items() if k != "extension"}
    # the filing instant is an extension: left out, it is not carried by this helper but
    # refused as a change; `active` is carried
    kept = carry_server_fields(
        "Patient", PATIENT, {k: v for k, v in PATIENT.items() if k != "active"}
    )
    assert kept["active"] is True
    assert carry_server_fields("DocumentReference", None, sent) == sent
