"""The AuditEvent Writes that record each decision (built by `audit.events`, chained by
the store in the same commit as what they record)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fhir_server.audit import build_audit_event
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.policy import Decision
from fhir_server.storage.port import Write

if TYPE_CHECKING:
    from fhir_server.interactions.context import Context

AUDIT_CHAIN = "audit"
TRUSTED = Decision.allow("trusted", "authentication is off (auth=none)")


def audit_write(
    ctx: Context,
    decision: Decision,
    *,
    interaction: str,
    status: int,
    patient_id: str | None,
    resource: str | None = None,
    query: str | None = None,
    transaction: str | None = None,
) -> Write:
    """One AuditEvent, in the record `patient_id` names (None: in no record)."""
    event_id = new_id()
    event = build_audit_event(
        interaction=interaction,
        recorded=ctx.clock(),
        status=status,
        rule=decision.rule,
        reason=decision.reason,
        actor=ctx.actor,
        access=ctx.access,
        patient_id=patient_id or None,
        resource=resource,
        query=query,
        transaction=transaction,
        client_address=ctx.client,
        server=ctx.server,
        event_id=event_id,
    )
    write = make_write("create", "AuditEvent", event_id, event, current=None, now=ctx.now_iso())
    return replace(write, chain=AUDIT_CHAIN)
