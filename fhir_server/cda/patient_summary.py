"""Patient-summary sections (VSM, LDL-SES, IPS-FR, VAC) -> Condition (problems and
history) and AllergyIntolerance (allergies), pure like the lab walk.

A concern act (the entry) holds one or more SUBJ observations; each observation is one
resource. Its clinical status comes from the status observation it holds, else from the
concern's statusCode (active -> active, completed -> resolved). Treatments and
vaccinations are not extracted.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import Unreadable, child, children, codeable, template_ids, v3
from fhir_server.cda.extraction import Walk
from fhir_server.terminology.body_tables import SummaryTables, summary_tables

Json = dict[str, Any]


def _sections(body: etree._Element) -> list[etree._Element]:
    """Every section, nested ones included (VSM nests them two levels down)."""
    return list(body.iter(v3("section")))


def _subjects(concern: etree._Element) -> list[etree._Element]:
    return [
        obs
        for rel in children(concern, "entryRelationship")
        if rel.get("typeCode") == "SUBJ" and (obs := child(rel, "observation")) is not None
    ]


def _status(obs: etree._Element, concern: etree._Element, tables: SummaryTables) -> str | None:
    for rel in children(obs, "entryRelationship"):
        inner = child(rel, "observation")
        if inner is None or not set(template_ids(inner)) & tables.status_observations:
            continue
        value = child(inner, "value")
        code = value.get("code") if value is not None else None
        if code in tables.clinical_status:
            return tables.clinical_status[code]
    status = child(concern, "statusCode")
    return tables.concern_status.get(status.get("code") or "") if status is not None else None


def _bounds(el: etree._Element | None, walk: Walk, at: etree._Element) -> tuple[str | None, ...]:
    if el is None:
        return None, None
    out = []
    for name in ("low", "high"):
        bound = child(el, name)
        raw = bound.get("value") if bound is not None else None
        value = dt.timestamp(raw) if raw else None
        if raw and value is None:
            walk.warn(at, f"invalid timestamp {raw!r} left out")
        out.append(value)
    if out == [None, None] and el.get("value"):
        out[0] = dt.timestamp(el.get("value"))
    return tuple(out)


def _status_concept(system: str, code: str | None) -> Json | None:
    return {"coding": [{"system": system, "code": code}]} if code else None


def _condition(obs: etree._Element, concern: etree._Element, walk: Walk) -> None:
    tables = summary_tables()
    value = child(obs, "value")
    code = codeable(value, walk.narrative) if value is not None else None
    if code is None:
        walk.skip(obs, "problem without a coded or text value")
        return
    res: Json = {"resourceType": "Condition", "id": walk.id_of(obs), "code": code}
    if (category := codeable(child(obs, "code"), walk.narrative)) is not None:
        res["category"] = [category]
    status = _status(obs, concern, tables)
    if (clinical := _status_concept(tables.condition_clinical_system, status)) is not None:
        res["clinicalStatus"] = clinical
    onset, abatement = _bounds(child(obs, "effectiveTime"), walk, obs)
    if onset is None:
        onset, _ = _bounds(child(concern, "effectiveTime"), walk, concern)
    if onset:
        res["onsetDateTime"] = onset
    if abatement:
        res["abatementDateTime"] = abatement
    walk.keep(res)


def _allergy(obs: etree._Element, concern: etree._Element, walk: Walk) -> None:
    tables = summary_tables()
    agent = obs.find(
        f"{v3('participant')}/{v3('participantRole')}/{v3('playingEntity')}/{v3('code')}"
    )
    code = codeable(agent, walk.narrative) if agent is not None else None
    res: Json = {
        "resourceType": "AllergyIntolerance",
        "id": walk.id_of(obs),
        "type": "allergy",
        # no allergen named: said so, as FR Document Core's data-absent-reason example
        "code": code or {"coding": [tables.data_absent_reason]},
    }
    kind = child(obs, "code")
    if kind is not None and (category := tables.allergy_categories.get(kind.get("code") or "")):
        res["category"] = [category]
    status = _status(obs, concern, tables)
    status = status if status in tables.allergy_clinical_codes else None
    if (clinical := _status_concept(tables.allergy_clinical_system, status)) is not None:
        res["clinicalStatus"] = clinical
    low, high = _bounds(child(obs, "effectiveTime"), walk, obs)
    period = {k: v for k, v in (("start", low), ("end", high)) if v}
    if period:
        res["onsetPeriod"] = period
    walk.keep(res)


_HANDLERS = {"problems": _condition, "allergies": _allergy}


def extract_summary(body: etree._Element, walk: Walk) -> None:
    tables = summary_tables()
    for section in _sections(body):
        kind = next(
            (tables.sections[t] for t in template_ids(section) if t in tables.sections), None
        )
        if kind is None:
            continue
        for entry in children(section, "entry"):
            concern = child(entry, "act")
            if concern is None or not set(template_ids(concern)) & tables.concern_entries[kind]:
                walk.skip(entry, f"not a {kind} concern entry")
                continue
            if concern.get("moodCode", "EVN") != "EVN":
                continue
            subjects = _subjects(concern)
            if not subjects:
                walk.skip(concern, "concern without an observation")
            for obs in subjects:
                try:
                    _HANDLERS[kind](obs, concern, walk)
                except Unreadable as exc:
                    walk.skip(obs, str(exc))
