"""Closing and reopening a patient's record (R.1111-34): a closed record is read-only for
everyone but the holder, nothing can be filed into it, and it is destroyed ten years
after closure (`dmp-fhir housekeeping`).

The Patient shows the record's state as the DMP guide reads it (TD0.2): `active` (false:
closed), and while closed the `dmp-fermeture` extension with the closure date, and the
motif and reason `$close` was given (a `Parameters` body: `motif` as a Coding or
CodeableConcept, `raison` as a string; both optional). The treating physician is
`Patient.generalPractitioner`."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.fhir.extensions import CLOSED_AT_URL, DMP_FERMETURE_URL
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.versioning import make_write
from fhir_server.policy import Action
from fhir_server.policy.facts import closed_at

CLOSURE_URLS = (CLOSED_AT_URL, DMP_FERMETURE_URL)


def closure_reason(body: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The motif (as a CodeableConcept) and reason a `$close` Parameters body gives."""
    if body is None:
        return None, None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise errors.bad_request("$close takes a Parameters body (motif, raison) or none")
    motif: dict[str, Any] | None = None
    reason: str | None = None
    for param in body.get("parameter") or []:
        name = param.get("name") if isinstance(param, dict) else None
        if name == "motif" and isinstance(param.get("valueCoding"), dict):
            motif = {"coding": [param["valueCoding"]]}
        elif name == "motif" and isinstance(param.get("valueCodeableConcept"), dict):
            motif = param["valueCodeableConcept"]
        elif name == "raison" and isinstance(param.get("valueString"), str):
            reason = param["valueString"]
        else:
            raise errors.bad_request(
                f"$close: unknown or malformed parameter {name!r} (motif: Coding or "
                "CodeableConcept, raison: string)"
            )
    return motif, reason


def fermeture(instant: str, motif: dict[str, Any] | None, reason: str | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "dateFermeture", "valueDate": instant[:10]}]
    if motif is not None:
        parts.append({"url": "motifFermeture", "valueCodeableConcept": motif})
    if reason:
        parts.append({"url": "raisonFermeture", "valueString": reason})
    return {"url": DMP_FERMETURE_URL, "extension": parts}


def _closed(
    patient: dict[str, Any],
    instant: str,
    motif: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    others = [e for e in patient.get("extension") or [] if e.get("url") not in CLOSURE_URLS]
    return {
        **patient,
        "active": False,
        "extension": [
            *others,
            {"url": CLOSED_AT_URL, "valueDateTime": instant},
            fermeture(instant, motif, reason),
        ],
    }


def _reopened(patient: dict[str, Any]) -> dict[str, Any]:
    out = {**patient, "active": True}
    others = [e for e in patient.get("extension") or [] if e.get("url") not in CLOSURE_URLS]
    if others:
        out["extension"] = others
    else:
        out.pop("extension", None)
    return out


async def set_closed(ctx: Context, patient_id: str, close: bool, body: Any = None) -> WriteOutcome:
    motif, reason = closure_reason(body) if close else (None, None)
    action = Action.CLOSE_RECORD if close else Action.REOPEN_RECORD

    async def attempt() -> WriteOutcome:
        current = await ctx.gate.stored_for_write("Patient", patient_id, "update", action=action)
        if current is None or current.deleted:
            raise errors.not_found(f"Patient/{patient_id} is not known")
        before = current.resource or {}
        now = ctx.now_iso()
        after = _closed(before, now, motif, reason) if close else _reopened(before)
        write = make_write("update", "Patient", patient_id, after, current=current, now=now)
        audit = await ctx.gate.judge(
            "update", "Patient", before, write.resource, f"Patient/{patient_id}", action=action
        )
        if (closed_at(before) is not None) == close:
            raise errors.conflict(f"The record is already {'closed' if close else 'open'}")
        stored, *_ = await ctx.gate.commit([write, *audit])
        return WriteOutcome(200, stored)

    return await retry_on_conflict(attempt, f"Patient/{patient_id}")
