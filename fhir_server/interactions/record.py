"""Closing and reopening a patient's record (R.1111-34): a closed record is read-only for
everyone but the holder, nothing can be filed into it, and it is destroyed ten years
after closure (`dmp-fhir housekeeping`)."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.fhir.extensions import CLOSED_AT_URL
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.versioning import make_write
from fhir_server.policy import Action
from fhir_server.policy.facts import closed_at


def _closed(patient: dict[str, Any], instant: str) -> dict[str, Any]:
    others = [e for e in patient.get("extension") or [] if e.get("url") != CLOSED_AT_URL]
    return {
        **patient,
        "active": False,
        "extension": [*others, {"url": CLOSED_AT_URL, "valueDateTime": instant}],
    }


def _reopened(patient: dict[str, Any]) -> dict[str, Any]:
    out = {**patient, "active": True}
    others = [e for e in patient.get("extension") or [] if e.get("url") != CLOSED_AT_URL]
    if others:
        out["extension"] = others
    else:
        out.pop("extension", None)
    return out


async def set_closed(ctx: Context, patient_id: str, close: bool) -> WriteOutcome:
    action = Action.CLOSE_RECORD if close else Action.REOPEN_RECORD

    async def attempt() -> WriteOutcome:
        current = await ctx.gate.stored_for_write("Patient", patient_id, "update", action=action)
        if current is None or current.deleted:
            raise errors.not_found(f"Patient/{patient_id} is not known")
        before = current.resource or {}
        now = ctx.now_iso()
        after = _closed(before, now) if close else _reopened(before)
        write = make_write("update", "Patient", patient_id, after, current=current, now=now)
        audit = await ctx.gate.judge(
            "update", "Patient", before, write.resource, f"Patient/{patient_id}", action=action
        )
        if (closed_at(before) is not None) == close:
            raise errors.conflict(f"The record is already {'closed' if close else 'open'}")
        stored, *_ = await ctx.gate.commit([write, *audit])
        return WriteOutcome(200, stored)

    return await retry_on_conflict(attempt, f"Patient/{patient_id}")
