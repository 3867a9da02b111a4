"""Closing and reopening a patient's record (R.1111-34): a closed record is read-only for
everyone but the holder, nothing can be filed into it, and it is destroyed ten years
after closure (`dmp-fhir housekeeping`).

The Patient shows the record's state as the DMP guide reads it (TD0.2): `active` (false:
closed), and while closed the `dmp-fermeture` extension with the closure date, and the
motif and reason `$close` was given (a `Parameters` body: `motif` as a Coding or
CodeableConcept, `raison` as a string; both optional). The treating physician is
`Patient.generalPractitioner`. `dmp-rattachement-mes` (boolean) says whether the record
is linked to Mon espace santé: false when the record opens, true once its holder (or a
legal representative) has activated it (`$link-mes`); only the server writes it.

`$authorisation` tells a professional their own authorisation status for the record (the
guide's TD0.2 "authorisation of the actor"), as a `Parameters`: `status` (`authorised` or
`not-authorised`) and, when authorised, `basis` (`treating-physician`,
`authorised-professional`, `care-team`). The Gate decides who may ask (`Gate.authorisation`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server import errors
from fhir_server.fhir.extensions import (
    CLOSED_AT_URL,
    DMP_FERMETURE_URL,
    DMP_RATTACHEMENT_MES_URL,
    extension_value,
)
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.versioning import make_write
from fhir_server.policy import Action
from fhir_server.policy.decide import AUTHORISED, NOT_AUTHORISED
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


async def _change_record(
    ctx: Context,
    patient_id: str,
    action: Action,
    change: Callable[[dict[str, Any], str], dict[str, Any]],
    settled: Callable[[dict[str, Any]], bool],
    conflict: str | None,
) -> WriteOutcome:
    """A server-set change of the record's Patient (`change(before, now)`), judged as
    `action`. A record `settled` already gets 409 `conflict`, or with None is answered as
    it is (the request still audited)."""

    async def attempt() -> WriteOutcome:
        current = await ctx.gate.stored_for_write("Patient", patient_id, "update", action=action)
        if current is None or current.deleted:
            raise errors.not_found(f"Patient/{patient_id} is not known")
        before = current.resource or {}
        now = ctx.now_iso()
        after = change(before, now)
        write = make_write("update", "Patient", patient_id, after, current=current, now=now)
        audit = await ctx.gate.judge(
            "update", "Patient", before, write.resource, f"Patient/{patient_id}", action=action
        )
        if settled(before):
            if conflict is not None:
                raise errors.conflict(conflict)
            await ctx.gate.commit(audit)
            return WriteOutcome(200, current)
        stored, *_ = await ctx.gate.commit([write, *audit])
        return WriteOutcome(200, stored)

    return await retry_on_conflict(attempt, f"Patient/{patient_id}")


async def set_closed(ctx: Context, patient_id: str, close: bool, body: Any = None) -> WriteOutcome:
    motif, reason = closure_reason(body) if close else (None, None)
    return await _change_record(
        ctx,
        patient_id,
        Action.CLOSE_RECORD if close else Action.REOPEN_RECORD,
        lambda before, now: _closed(before, now, motif, reason) if close else _reopened(before),
        lambda before: (closed_at(before) is not None) == close,
        f"The record is already {'closed' if close else 'open'}",
    )


def linked(patient: dict[str, Any]) -> dict[str, Any]:
    """The Patient with `dmp-rattachement-mes` true (any earlier value replaced)."""
    others = [e for e in patient.get("extension") or [] if e.get("url") != DMP_RATTACHEMENT_MES_URL]
    flag = {"url": DMP_RATTACHEMENT_MES_URL, "valueBoolean": True}
    return {**patient, "extension": [*others, flag]}


async def link_mes(ctx: Context, patient_id: str) -> WriteOutcome:
    """The holder activates Mon espace santé: the record is linked (idempotent)."""
    return await _change_record(
        ctx,
        patient_id,
        Action.LINK_MES,
        lambda before, _now: linked(before),
        lambda before: extension_value(before, DMP_RATTACHEMENT_MES_URL) is True,
        None,
    )


async def authorisation(ctx: Context, patient_id: str) -> dict[str, Any]:
    decision = await ctx.gate.authorisation(patient_id)
    status = AUTHORISED if decision.permit else NOT_AUTHORISED
    parameters: list[dict[str, Any]] = [{"name": "status", "valueCode": status}]
    if decision.permit:
        parameters.append({"name": "basis", "valueCode": decision.rule})
    return {"resourceType": "Parameters", "parameter": parameters}
