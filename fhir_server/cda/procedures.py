"""A procedure entry of a patient summary (FR-Acte) as a `Procedure` (pure)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import child, children, codeable
from fhir_server.cda.entries import actor, notes, related
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
    approaches = [
        c for a in children(proc, "approachSiteCode") if (c := codeable(a, walk.narrative))
    ]
    if approaches:
        # **decision**: the extension names a BodyStructure (FR Document Core); the
        # approach site is one, contained, its patient the procedure's (`fhir.derived`)
        res["contained"] = [
            {"resourceType": "BodyStructure", "id": f"approach-{n}", "location": site}
            for n, site in enumerate(approaches, 1)
        ]
        res["extension"] = [
            {
                "url": tables.approach_body_structure,
                "valueReference": {"reference": f"#approach-{n}"},
            }
            for n in range(1, len(approaches) + 1)
        ]
    # **decision** (the reference's guess): the entry's author recorded it
    for author in children(proc, "author"):
        if (who := actor(child(author, "assignedAuthor"))) is not None:
            res["recorder"] = who
            break
    for act in related(proc, tables.internal_references, "RSON"):
        refs.reason(res, act)
    # its author is the recorder (above), its comments its notes
    if found := notes([proc], walk.narrative, tables.comment_acts):
        res["note"] = found
    walk.keep(res)
