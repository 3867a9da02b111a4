"""Notifications to the record holder, as R4 `Communication` resources (pure builders).

The patient's applications fetch or subscribe to them (`Communication?subject=Patient/x`,
`sent` as the date); delivery by SMS or e-mail is outside the server (dmp-rules.md,
Traceability).

| kind (category code) | when | recipients | source |
|---|---|---|---|
| record-created | the record is created | patient | Traceability |
| first-consultation | a professional reads the record for the first time | patient | Traceability |
| new-document | a professional files a document | patient | Traceability |
| emergency-access | every bris_de_glace / centre_15 access | patient + treating physician | R.1111-48 |

`about` names the document (`DocumentReference/<id>`), the professional (a Practitioner
reference by RPPS identifier) and, for emergencies, the AuditEvent.
| embargo-lapsing | an INVISIBLE_PATIENT document, two weeks after filing | patient | R.1111-53 |

Category system `https://dmp-fhir.invalid/CodeSystem/dmp-notification` (local, these five
codes). Texts are in French. **decisions**: no `new-document` notice for a document under
INVISIBLE_PATIENT (the embargo notice replaces it) or INVISIBLE_REPRESENTANTS_LEGAUX
(`should_notify_new_document`); the embargo notice names neither the document's title nor
its type; a Communication about an INVISIBLE_REPRESENTANTS_LEGAUX document carries that
label in `meta.security` so the read side can hide it from legal representatives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from fhir_server.auth.actor import RPPS_SYSTEM, AccessMode
from fhir_server.policy.model import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    VISIBILITY_SYSTEM,
    DocumentFacts,
)

CATEGORY_SYSTEM = "https://dmp-fhir.invalid/CodeSystem/dmp-notification"


class NotificationKind(StrEnum):
    RECORD_CREATED = "record-created"
    FIRST_CONSULTATION = "first-consultation"
    NEW_DOCUMENT = "new-document"
    EMERGENCY_ACCESS = "emergency-access"
    EMBARGO_LAPSING = "embargo-lapsing"


DISPLAY: Mapping[NotificationKind, str] = {
    NotificationKind.RECORD_CREATED: "Création du dossier",
    NotificationKind.FIRST_CONSULTATION: "Première consultation par un professionnel",
    NotificationKind.NEW_DOCUMENT: "Nouveau document",
    NotificationKind.EMERGENCY_ACCESS: "Accès en urgence",
    NotificationKind.EMBARGO_LAPSING: "Document bientôt visible",
}
MODE_TEXT: Mapping[AccessMode, str] = {
    AccessMode.BRIS_DE_GLACE: "en mode bris de glace",
    AccessMode.CENTRE_15: "par le centre de régulation médicale (centre 15)",
}


def _day(instant: datetime) -> str:
    return instant.strftime("%d/%m/%Y")


def _communication(
    kind: NotificationKind,
    patient_id: str,
    sent: datetime,
    text: str,
    *,
    extra_recipients: list[dict[str, Any]] | None = None,
    about: list[dict[str, Any]] | None = None,
    hide_from_legal_rep: bool = False,
) -> dict[str, Any]:
    if sent.tzinfo is None:
        raise ValueError("sent must be timezone-aware")
    patient = {"reference": f"Patient/{patient_id}"}
    comm: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {"coding": [{"system": CATEGORY_SYSTEM, "code": kind.value, "display": DISPLAY[kind]}]}
        ],
        "subject": patient,
        "recipient": [patient, *(extra_recipients or [])],
        "sender": {"display": "Dossier Médical Partagé"},
        "sent": sent.isoformat(timespec="seconds"),
        "payload": [{"contentString": text}],
    }
    if about:
        comm["about"] = about
    if hide_from_legal_rep:
        comm["meta"] = {
            "security": [{"system": VISIBILITY_SYSTEM, "code": INVISIBLE_REPRESENTANTS_LEGAUX}]
        }
    return comm


def _practitioner(rpps: str, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "type": "Practitioner",
        "identifier": {"system": RPPS_SYSTEM, "value": rpps},
    }
    if display:
        ref["display"] = display
    return ref


def record_created(patient_id: str, sent: datetime) -> dict[str, Any]:
    return _communication(
        NotificationKind.RECORD_CREATED,
        patient_id,
        sent,
        "Votre Dossier Médical Partagé a été créé. Vous pouvez le consulter, masquer des "
        "documents, gérer les professionnels autorisés ou vous opposer aux accès en urgence.",
    )


def first_consultation(
    patient_id: str, sent: datetime, professional: str, rpps: str | None = None
) -> dict[str, Any]:
    return _communication(
        NotificationKind.FIRST_CONSULTATION,
        patient_id,
        sent,
        f"{professional} a consulté votre Dossier Médical Partagé pour la première fois. "
        "Vous pouvez bloquer ce professionnel à tout moment.",
        about=None if rpps is None else [_practitioner(rpps, professional)],
    )


def should_notify_new_document(document: DocumentFacts) -> bool:
    """No notice for a document the holder or their representatives may not see yet."""
    return not document.labels & {INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX}


def new_document(
    patient_id: str, sent: datetime, document_ref: str, title: str, author: str
) -> dict[str, Any]:
    return _communication(
        NotificationKind.NEW_DOCUMENT,
        patient_id,
        sent,
        f"Un nouveau document a été ajouté à votre dossier par {author} : « {title} ».",
        about=[{"reference": document_ref}],
    )


def emergency_access(
    patient_id: str,
    sent: datetime,
    mode: AccessMode,
    professional: str,
    professional_rpps: str | None,
    justification: str | None,
    treating_rpps: str | None,
    audit_ref: str | None = None,
) -> dict[str, Any]:
    """To the holder and the treating physician (R.1111-48)."""
    if mode is AccessMode.NORMAL:
        raise ValueError("an emergency notification needs an emergency access mode")
    why = f" Motif déclaré : « {justification} »." if justification else ""
    text = (
        f"{professional} a accédé à votre Dossier Médical Partagé {MODE_TEXT[mode]} le "
        f"{_day(sent)}.{why} Vous pouvez consulter l'historique des accès et vous opposer "
        "aux accès en urgence."
    )
    recipients = [_practitioner(treating_rpps, "médecin traitant")] if treating_rpps else []
    about = [_practitioner(professional_rpps, professional)] if professional_rpps else []
    if audit_ref:
        about.append({"reference": audit_ref})
    return _communication(
        NotificationKind.EMERGENCY_ACCESS,
        patient_id,
        sent,
        text,
        extra_recipients=recipients,
        about=about,
    )


def embargo_lapsing(
    patient_id: str,
    sent: datetime,
    document_ref: str,
    visible_from: datetime,
    hide_from_legal_rep: bool = False,
) -> dict[str, Any]:
    return _communication(
        NotificationKind.EMBARGO_LAPSING,
        patient_id,
        sent,
        f"Un document de votre dossier deviendra visible pour vous le {_day(visible_from)}. "
        "Il a été provisoirement rendu invisible par le professionnel qui l'a déposé, afin "
        "de pouvoir vous l'expliquer lors d'une consultation. N'hésitez pas à le contacter.",
        about=[{"reference": document_ref}],
        hide_from_legal_rep=hide_from_legal_rep,
    )
