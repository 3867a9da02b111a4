"""Observations of a patient summary (pure): each vital sign of a vital-signs organizer
(FR-Signes-vitaux), and the simple observations read wherever they stand (LDL-SES
MED-309, "multi-resistant organisms searched for", a boolean)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import Unreadable, child, children, codeable, template_ids
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


def vital_signs(organizer: etree._Element, walk: Walk, refs: References) -> None:
    """One Observation per vital sign (the organizer, a panel, is not one of its own);
    without a time of its own, a sign takes the organizer's."""
    tables = summary_tables()
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
        res["category"] = [{"coding": [tables.vital_signs_category]}]
        if "effectiveDateTime" not in res and "effectivePeriod" not in res:
            when = dt.effective(
                child(organizer, "effectiveTime"), lambda m: walk.warn(organizer, m)
            )
            if when is not None:
                res[when[0]] = when[1]
        walk.keep(res)


def simple_observation(obs: etree._Element, walk: Walk) -> None:
    status = child(obs, "statusCode")
    res = _observation(
        obs, walk, observation_status(status.get("code") if status is not None else None)
    )
    walk.keep(res)
