"""The patient's notifications (`Communication`) that a permitted access or filing sends
(builders in `audit.notifications`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fhir_server.audit import notifications as notify
from fhir_server.auth.actor import PROFESSIONAL_ROLES, AccessMode, Role
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.policy import DocumentFacts
from fhir_server.policy.facts import document_facts
from fhir_server.storage.port import Write

if TYPE_CHECKING:
    from fhir_server.access.records import Record
    from fhir_server.interactions.context import Context


def _professional(ctx: Context) -> str:
    actor = ctx.actor
    return f"Le professionnel RPPS {actor.rpps}" if actor and actor.rpps else "Un professionnel"


def notification_write(
    ctx: Context, communication: dict[str, Any], key: str | None = None
) -> Write:
    cid = new_id()
    keys = (key,) if key else ()
    return make_write(
        "create",
        "Communication",
        cid,
        {**communication, "id": cid},
        current=None,
        now=ctx.now_iso(),
        extra_keys=keys,
    )


def first_consultation_key(patient_id: str, rpps: str) -> str:
    return f"Communication.first-consultation|{patient_id}|{rpps}"


def read_notifications(ctx: Context, record: Record, first_time: bool) -> list[Write]:
    """Emergency access (every time) and a professional's first consultation (once, made
    unique by a key the database holds: `first_time` says it is not held yet)."""
    actor = ctx.actor
    if actor is None or actor.role not in PROFESSIONAL_ROLES:
        return []
    out: list[Write] = []
    now, pid = ctx.clock(), record.facts.id
    if ctx.access.mode is not AccessMode.NORMAL:
        out.append(
            notification_write(
                ctx,
                notify.emergency_access(
                    pid,
                    now,
                    ctx.access.mode,
                    _professional(ctx),
                    actor.rpps,
                    ctx.access.justification,
                    record.facts.treating_rpps,
                ),
            )
        )
    if actor.rpps and first_time:
        out.append(
            notification_write(
                ctx,
                notify.first_consultation(pid, now, _professional(ctx), actor.rpps),
                first_consultation_key(pid, actor.rpps),
            )
        )
    return out


def filing_notifications(
    ctx: Context,
    patient_id: str,
    document: Mapping[str, Any],
    doc_ref: str,
    facts: DocumentFacts | None = None,
) -> list[Write]:
    """The patient's notification of a new document (`facts`: the document's, when the
    caller has them already)."""
    actor = ctx.actor
    if actor is None or actor.role in (Role.PATIENT, Role.LEGAL_REPRESENTATIVE):
        return []
    if not notify.should_notify_new_document(facts or document_facts(document)):
        return []
    title = str(
        (document.get("content") or [{}])[0].get("attachment", {}).get("title")
        or document.get("description")
        or "document"
    )
    who = (
        _professional(ctx) if actor.rpps else f"l'établissement {actor.organization or ''}".strip()
    )
    return [
        notification_write(ctx, notify.new_document(patient_id, ctx.clock(), doc_ref, title, who))
    ]


def record_created(ctx: Context, patient_id: str) -> Write:
    return notification_write(ctx, notify.record_created(patient_id, ctx.clock()))
