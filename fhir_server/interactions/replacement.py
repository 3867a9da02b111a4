"""Replacement of a filed document (CDA relatedDocument RPLC, MHD relatesTo replaces): the
replaced DocumentReference becomes `superseded` in the same commit as its successor.

Decision: the replaced document must be filed here, be `current`, belong to the same
patient and be one the filer may replace (its author, its filing establishment, or the
patient for their own deposit), otherwise the filing is refused (422), as an XDS registry
refuses an RPLC whose parent it does not hold; a document the filer may not see is
answered as one the server does not hold (`access.filing.replaced`). Filing a successor of
an unknown document would leave two `current` versions once the parent arrives; a client
that sends them out of order retries (`dmp-fhir import` does it by itself).
"""

from __future__ import annotations

from typing import Any

from fhir_server.access import filing
from fhir_server.interactions.context import Context
from fhir_server.interactions.versioning import make_write
from fhir_server.policy import Action
from fhir_server.storage.port import Stored, Write

UNKNOWN_PARENT_CODE = filing.UNKNOWN_PARENT_CODE


async def replaced_documents(ctx: Context, doc_ref: dict[str, Any]) -> list[Stored]:
    """The current DocumentReferences this one replaces; refuses (422) what cannot be."""
    patient_ref = (doc_ref.get("subject") or {}).get("reference")
    return [
        await filing.replaced(ctx.gate, rel.get("target") or {}, patient_ref)
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
    policy's `update` of the replaced one."""
    superseded = supersede(parent, now)
    audit = await ctx.gate.judge(
        "update",
        "DocumentReference",
        parent.resource,
        superseded.resource,
        f"DocumentReference/{parent.id}",
        transaction=transaction,
        action=Action.UPDATE,
    )
    return [superseded, *audit]
