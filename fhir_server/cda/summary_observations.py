"""Observations of a patient summary (pure): each vital sign of a vital-signs organizer
(FR-Signes-vitaux), and the simple observations read wherever they stand (LDL-SES
MED-309, "multi-resistant organisms searched for", a boolean)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import Unreadable, child, children, codeable, template_ids
from fhir_server.cda.entries import author_and_notes, notes
from fhir_server.cda.extraction import Walk
from fhir_server.cda.internal_references import References
from fhir_server.terminology.body_tables import observation_status, summary_tables

Json = dict[str, Any]


def _observation(obs: etree._Element, walk: Walk, status: str) -> Json:
    code = codeable(child(obs, "code"), walk.narrative)
    if code is None:
        raise Unreadable("observation without a code")
    value = child(obs, "value")
    if value is None:
        raise Unreadable("observation without a value")
    name, read = dt.value(value, walk.narrative)
    res: Json = {"resourceType": "Observation", "id": walk.id_of(obs), "status": status}
    res["code"] = code
    if (when := dt.effective(child(obs, "effectiveTime"), lambda m: walk.warn(obs, m))) is not None:
        res[when[0]] = when[1]
    res[name] = read
    return res


def _notes(res: Json, obs: etree._Element, walk: Walk) -> None:
    """Comments as notes (MED-309's profile names no author: none is read)."""
    if found := notes([obs], walk.narrative, summary_tables().comment_acts):
        res["note"] = found


def vital_signs(organizer: etree._Element, walk: Walk, refs: References) -> None:
    """One Observation per vital sign and one for the organizer, the panel that names
    them as `hasMember` (FR Document Core's vital-signs panel); without a time of its
    own, a sign takes the organizer's."""
    tables = summary_tables()
    category = [{"coding": [tables.vital_signs_category]}]
    when = dt.effective(child(organizer, "effectiveTime"), lambda m: walk.warn(organizer, m))
    members = []
    for component in children(organizer, "component"):
        obs = child(component, "observation")
        if obs is None or not set(template_ids(obs)) & tables.vital_sign_observations:
            walk.skip(component, "not a vital-sign observation")
            continue
        try:
            # FR Document Core: a vital sign of a summary is final
            res = _observation(obs, walk, "final")
        except Unreadable as exc:
            walk.skip(obs, str(exc))
            continue
        res["category"] = category
        if "effectiveDateTime" not in res and "effectivePeriod" not in res and when is not None:
            res[when[0]] = when[1]
        author_and_notes(res, [obs], walk.narrative)
        members.append({"reference": f"Observation/{walk.keep(res)}"})
    if members:
        walk.keep(_panel(organizer, walk, category, when, members))


def _panel(
    organizer: etree._Element,
    walk: Walk,
    category: list[Json],
    when: tuple[str, Any] | None,
    members: list[Json],
) -> Json:
    """The organizer as a panel: the code the profile fixes (LOINC 85353-1) with the
    organizer's own codes, a dateTime (a period's start: the profile allows no period)."""
    panel_code = summary_tables().vital_signs_panel_code
    own = codeable(child(organizer, "code"), walk.narrative) or {}
    codings = [panel_code] + [
        c
        for c in own.get("coding", [])
        if (c.get("system"), c.get("code")) != (panel_code["system"], panel_code["code"])
    ]
    res: Json = {
        "resourceType": "Observation",
        "id": walk.id_of(organizer),
        "status": "final",
        "category": category,
        "code": {**own, "coding": codings},
    }
    if when is not None:
        start = when[1] if when[0] == "effectiveDateTime" else when[1].get("start")
        if start:
            res["effectiveDateTime"] = start
    res["hasMember"] = members
    author_and_notes(res, [organizer], walk.narrative)
    return res


def simple_observation(obs: etree._Element, walk: Walk) -> None:
    status = child(obs, "statusCode")
    res = _observation(
        obs, walk, observation_status(status.get("code") if status is not None else None)
    )
    _notes(res, obs, walk)
    walk.keep(res)
