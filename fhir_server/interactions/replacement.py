"""Replacement of a filed document (CDA relatedDocument RPLC, MHD relatesTo replaces): the
replaced DocumentReference becomes `superseded` in the same commit as its successor.

Decision: the replaced document must be filed here, be `current` and belong to the same
patient, otherwise the filing is refused (422), as an XDS registry refuses an RPLC whose
parent it does not hold. Filing a successor of an unknown document would leave two
`current` versions once the parent arrives; a client that sends them out of order retries
(`dmp-fhir import` does it by itself).
"""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.uniqueness import document_key
from fhir_server.interactions.context import Context
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import Stored, Write

# the issue code a refusal for an unknown replaced document carries, so a client can retry
UNKNOWN_PARENT_CODE = "not-found"


async def filed(ctx: Context, master: dict[str, Any]) -> Stored | None:
    """The DocumentReference already holding this uniqueId, if any."""
    if not master.get("value"):
        return None
    holder = await ctx.store.holder_of(document_key(master))
    if holder is None:
        return None
    stored = await ctx.store.read(*holder)
    return stored if stored is not None and not stored.deleted else None


def _unknown(value: str) -> FhirError:
    return FhirError(
        422,
        [
            Issue(
                UNKNOWN_PARENT_CODE,
                f"The document replaces {value!r}, which is not filed on this server: file the "
                "replaced document first",
                expression=("DocumentReference.relatesTo",),
            )
        ],
    )


async def _parent(ctx: Context, target: dict[str, Any], patient_ref: str | None) -> Stored:
    ident = target.get("identifier")
    ref = target.get("reference") or ""
    if ident:
        stored = await filed(ctx, ident)
        name = str(ident.get("value"))
    elif ref.startswith("DocumentReference/"):
        stored = await ctx.store.read("DocumentReference", ref.split("/", 1)[1])
        name = ref
    else:
        raise errors.unprocessable(
            "relatesTo replaces needs a target identifier or DocumentReference/id",
            "DocumentReference.relatesTo",
        )
    if stored is None or stored.deleted:
        raise _unknown(name)
    res = stored.resource or {}
    if res.get("status") != "current":
        raise errors.unprocessable(
            f"DocumentReference/{stored.id} ({name}) is already {res.get('status')}: only a "
            "current document can be replaced",
            "DocumentReference.relatesTo",
        )
    parent_patient = (res.get("subject") or {}).get("reference")
    if patient_ref and parent_patient != patient_ref:
        raise errors.unprocessable(
            f"DocumentReference/{stored.id} ({name}) belongs to {parent_patient}, not to "
            f"{patient_ref}: a replacement keeps the patient",
            "DocumentReference.relatesTo",
        )
    return stored


async def replaced_documents(ctx: Context, doc_ref: dict[str, Any]) -> list[Stored]:
    """The current DocumentReferences this one replaces; refuses (422) what cannot be."""
    patient_ref = (doc_ref.get("subject") or {}).get("reference")
    return [
        await _parent(ctx, rel.get("target") or {}, patient_ref)
        for rel in doc_ref.get("relatesTo") or []
        if rel.get("code") == "replaces"
    ]


def link_replaced(doc_ref: dict[str, Any], parents: list[Stored]) -> dict[str, Any]:
    """relatesTo replaces targets carry the literal reference as well as the identifier."""
    if not parents:
        return doc_ref
    parents_iter = iter(parents)
    relates = []
    for rel in doc_ref.get("relatesTo") or []:
        if rel.get("code") == "replaces":
            target = {**rel["target"], "reference": f"DocumentReference/{next(parents_iter).id}"}
            rel = {**rel, "target": target}
        relates.append(rel)
    return {**doc_ref, "relatesTo": relates}


def supersede(parent: Stored, now: str) -> Write:
    resource = {**(parent.resource or {}), "status": "superseded"}
    return make_write("update", "DocumentReference", parent.id, resource, current=parent, now=now)


async def supersede_checked(
    ctx: Context, parent: Stored, now: str, transaction: str | None = None
) -> list[Write]:
    """The superseding Write of `parent` with its audit: replacing a document is the
    policy's `update` of the replaced one (its author, establishment or own deposit)."""
    from fhir_server.interactions import guard
    from fhir_server.policy import Action

    superseded = supersede(parent, now)
    audit = await guard.authorize_write(
        ctx,
        "update",
        "DocumentReference",
        parent.resource,
        superseded.resource,
        f"DocumentReference/{parent.id}",
        transaction,
        action=Action.UPDATE,
    )
    return [superseded, *audit]
