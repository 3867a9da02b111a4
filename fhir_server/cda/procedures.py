"""A procedure entry of a patient summary (FR-Acte) as a `Procedure` (pure)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import child, children, codeable
from fhir_server.cda.entries import actor, related
from fhir_server.cda.extraction import Walk
from fhir_server.cda.internal_references import References
from fhir_server.terminology.body_tables import summary_tables

Json = dict[str, Any]


def procedure(proc: etree._Element, walk: Walk, refs: References) -> None:
    tables = summary_tables()
    code = codeable(child(proc, "code"), walk.narrative)
    if code is None:
        walk.skip(proc, "procedure without a code")
        return
    status = child(proc, "statusCode")
    raw = status.get("code") if status is not None else None
    res: Json = {
        "resourceType": "Procedure",
        "id": walk.id_of(proc),
        "status": tables.procedure_status.get(raw or "", tables.default_procedure_status),
        "code": code,
    }
    performed = dt.effective(child(proc, "effectiveTime"), lambda m: walk.warn(proc, m))
    if performed is not None:
        name, value = performed
        res[name.replace("effective", "performed")] = value
    sites = [c for t in children(proc, "targetSiteCode") if (c := codeable(t, walk.narrative))]
    if sites:
        res["bodySite"] = sites
    # **decision** (the reference's guess): the entry's author recorded it
    for author in children(proc, "author"):
        if (who := actor(child(author, "assignedAuthor"))) is not None:
            res["recorder"] = who
            break
    for act in related(proc, tables.internal_references, "RSON"):
        refs.reason(res, act)
    walk.keep(res)
