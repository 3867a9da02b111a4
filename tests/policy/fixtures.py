"""Shared cast for the policy tests: one patient, her consents, her documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_server.auth.actor import FINESS_SYSTEM, RPPS_SYSTEM, AccessContext, AccessMode, Actor
from fhir_server.policy import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    DocumentFacts,
    PatientFacts,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
PID = "p1"
GP = "10000000001"
AUTHORISED = "10000000002"
STRANGER = "10000000003"
BLOCKED = "10000000004"
CARE_TEAM_DOC = "10000000005"
AUTHOR = "10000000006"
SAMU = "10000000007"
CARE_TEAM_FINESS = "750000001"
OTHER_FINESS = "750000009"

PATIENT = PatientFacts(id=PID, treating_rpps=GP)

ACTORS: dict[str, Actor] = {
    "patient": Actor("patient", "pat", patient=PID),
    "legal_rep": Actor("legal-representative", "mum", patient=PID),
    "treating": Actor("practitioner", "gp", rpps=GP, organization=OTHER_FINESS),
    "authorised": Actor("practitioner", "a", rpps=AUTHORISED, organization=OTHER_FINESS),
    "unauthorised": Actor("practitioner", "u", rpps=STRANGER, organization=OTHER_FINESS),
    "blocked": Actor("practitioner", "b", rpps=BLOCKED, organization=OTHER_FINESS),
    "care_team": Actor("practitioner", "c", rpps=CARE_TEAM_DOC, organization=CARE_TEAM_FINESS),
    "author": Actor("practitioner", "au", rpps=AUTHOR, organization=OTHER_FINESS),
    # admin staff of the very establishment that holds a care-team permit: it still reads nothing
    "admin": Actor("admin-staff", "adm", organization=CARE_TEAM_FINESS),
    "system": Actor("system", "lab", organization=OTHER_FINESS),
    "samu": Actor("samu-regulator", "s", rpps=SAMU),
    "cnam": Actor("assurance-maladie", "cnam"),
    "insurer": Actor("insurer", "axa"),
    "auditor": Actor("auditor", "cnil"),
}

MODES = {
    "normal": AccessContext(),
    "btg": AccessContext(AccessMode.BRIS_DE_GLACE, "patient unconscious, allergy check"),
    "c15": AccessContext(AccessMode.CENTRE_15),
}


def _ident(system: str, value: str) -> dict[str, Any]:
    return {"reference": {"identifier": {"system": system, "value": value}}}


def consent(
    kind: str,
    *,
    rpps: str | None = None,
    finess: str | None = None,
    purpose: str | None = None,
    status: str = "active",
    patient: str = PID,
    cid: str = "c",
    when: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": kind}
    actors = []
    if rpps:
        actors.append(_ident(RPPS_SYSTEM, rpps))
    if finess:
        actors.append(_ident(FINESS_SYSTEM, finess))
    if actors:
        provision["actor"] = actors
    if purpose:
        provision["purpose"] = [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}
        ]
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": when,
        "provision": provision,
    }


CONSENTS = [
    consent("permit", cid="open"),
    consent("permit", rpps=AUTHORISED, cid="auth"),
    consent("permit", rpps=AUTHOR, cid="auth-author"),
    consent("permit", rpps=BLOCKED, cid="auth-then-blocked", when="2025-01-01T00:00:00Z"),
    consent("deny", rpps=BLOCKED, cid="block"),
    consent("permit", finess=CARE_TEAM_FINESS, cid="care-team"),
]


def doc(
    labels: frozenset[str] = frozenset(),
    *,
    filed_days_ago: float = 90,
    authors: frozenset[str] = frozenset({AUTHOR}),
    class_code: str = "10",
    type_code: str | None = "11488-4",
    **kw: Any,
) -> DocumentFacts:
    return DocumentFacts(
        labels=labels,
        author_rpps=authors,
        class_code=class_code,
        type_code=type_code,
        filed_at=NOW - timedelta(days=filed_days_ago),
        **kw,
    )


# The five label columns of the matrix.
LABEL_COLUMNS: dict[str, DocumentFacts] = {
    "none": doc(),
    "masque_ps": doc(frozenset({MASQUE_PS})),
    "inv_patient_inside": doc(frozenset({INVISIBLE_PATIENT}), filed_days_ago=10),
    "inv_patient_after": doc(frozenset({INVISIBLE_PATIENT}), filed_days_ago=40),
    "inv_legal_rep": doc(frozenset({INVISIBLE_REPRESENTANTS_LEGAUX})),
}
