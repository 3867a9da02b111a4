"""Substance administrations of a patient summary: a treatment entry (FR-Traitement) as a
`MedicationStatement`, a vaccination entry (FR-Vaccination) as an `Immunization` (pure).

A detail that cannot be read faithfully (a dose that is not a number, a period in an
unknown unit) is left out with a warning; the entry is kept.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import Unreadable, child, children, codeable, v3
from fhir_server.cda.entries import actor, author_and_notes, related, text_of
from fhir_server.cda.extraction import Walk
from fhir_server.cda.internal_references import References
from fhir_server.cda.lab_participants import author_extension
from fhir_server.terminology.body_tables import lab_templates, summary_tables

Json = dict[str, Any]
_MATERIAL = f"{v3('consumable')}/{v3('manufacturedProduct')}/{v3('manufacturedMaterial')}"


def _material(sa: etree._Element) -> etree._Element | None:
    return sa.find(_MATERIAL)


def _product(sa: etree._Element, walk: Walk) -> Json | None:
    """The material's code (CIS, with its CIP / ATC translations), else its name."""
    material = _material(sa)
    if material is None:
        return None
    concept = codeable(child(material, "code"), walk.narrative)
    if concept is None and (name := text_of(child(material, "name"))):
        concept = {"text": name}
    return concept


def _pq(el: etree._Element | None) -> Json | None:
    if el is None or el.get("nullFlavor") or el.get("value") is None:
        return None
    return dt.quantity(el)


def _amount(el: etree._Element | None, name: str) -> tuple[str, Json] | None:
    """A dose or rate (IVL_PQ): a value or equal bounds -> <name>Quantity; two different
    bounds -> <name>Range (**decision**: a range says what the author wrote)."""
    if el is None or el.get("nullFlavor"):
        return None
    if (single := _pq(el)) is not None:
        return f"{name}Quantity", single
    low, high = _pq(child(el, "low")), _pq(child(el, "high"))
    if low is not None and (high is None or high == low):
        return f"{name}Quantity", low
    if low is None and high is None:
        return None
    return f"{name}Range", {k: v for k, v in (("low", low), ("high", high)) if v is not None}


def _ratio(el: etree._Element | None) -> Json | None:
    if el is None or el.get("nullFlavor"):
        return None
    num, den = _pq(child(el, "numerator")), _pq(child(el, "denominator"))
    return {"numerator": num, "denominator": den} if num is not None and den is not None else None


def _timing(el: etree._Element) -> Json | None:
    """PIVL_TS: once every <period> (frequency 1)."""
    period = child(el, "period")
    if period is None:
        raise Unreadable("frequency without a period")
    unit = summary_tables().period_units.get(period.get("unit") or "")
    if unit is None:
        raise Unreadable(f"frequency period unit {period.get('unit')!r} is not a time unit")
    return {
        "repeat": {"frequency": 1, "period": dt.decimal(period.get("value")), "periodUnit": unit}
    }


def _careful(walk: Walk, at: etree._Element, what: str, read: Any) -> Any:
    try:
        return read()
    except Unreadable as exc:
        walk.warn(at, f"{what} left out: {exc}")
        return None


def _dosage(sa: etree._Element, walk: Walk) -> Json:
    dosage: Json = {}
    for el in children(sa, "effectiveTime"):
        if dt.xsi_type(el) != "PIVL_TS":
            continue
        if (timing := _careful(walk, el, "frequency", lambda el=el: _timing(el))) is not None:
            dosage["timing"] = timing
    if (route := codeable(child(sa, "routeCode"), walk.narrative)) is not None:
        dosage["route"] = route
    dose_and_rate: Json = {}
    for name, tag in (("dose", "doseQuantity"), ("rate", "rateQuantity")):
        el = child(sa, tag)
        found = _careful(walk, sa, name, lambda el=el, name=name: _amount(el, name))
        if found is not None:
            dose_and_rate[found[0]] = found[1]
    if dose_and_rate:
        dosage["doseAndRate"] = [dose_and_rate]
    most = _careful(walk, sa, "maximum dose", lambda: _ratio(child(sa, "maxDoseQuantity")))
    if most is not None:
        dosage["maxDosePerPeriod"] = most
    return dosage


def medication_statement(sa: etree._Element, walk: Walk, refs: References) -> None:
    medication = _product(sa, walk)
    if medication is None:
        walk.skip(sa, "treatment without a product")
        return
    res: Json = {
        "resourceType": "MedicationStatement",
        "id": walk.id_of(sa),
        # FR Document Core: a treatment of a summary is a statement of what was taken
        "status": "completed",
        "medicationCodeableConcept": medication,
    }
    for el in children(sa, "effectiveTime"):
        if dt.xsi_type(el) != "PIVL_TS" and (
            found := dt.effective(el, lambda m, el=el: walk.warn(el, m))
        ):
            res[found[0]] = found[1]
            break
    if dosage := _dosage(sa, walk):
        res["dosage"] = [dosage]
    for act in related(sa, summary_tables().internal_references, "RSON"):
        refs.reason(res, act)
    author_and_notes(res, [sa], walk.narrative)
    walk.keep(res)


def _occurrence(sa: etree._Element, walk: Walk) -> str | None:
    found = dt.effective(child(sa, "effectiveTime"), lambda m: walk.warn(sa, m))
    if found is None:
        return None
    name, value = found
    return value if name == "effectiveDateTime" else value.get("start")


def immunization(sa: etree._Element, walk: Walk, refs: References) -> None:
    tables = summary_tables()
    vaccine = _product(sa, walk)
    if vaccine is None:
        walk.skip(sa, "vaccination without a vaccine")
        return
    occurrence = _occurrence(sa, walk)
    if occurrence is None:
        walk.skip(sa, "vaccination without a date")
        return
    res: Json = {
        "resourceType": "Immunization",
        "id": walk.id_of(sa),
        "status": "not-done" if sa.get("negationInd") == "true" else "completed",
        "vaccineCode": vaccine,
        "occurrenceDateTime": occurrence,
    }
    material = _material(sa)
    if material is not None and (lot := text_of(child(material, "lotNumberText"))):
        res["lotNumber"] = lot
    if (site := codeable(child(sa, "approachSiteCode"), walk.narrative)) is not None:
        res["site"] = site
    if (route := codeable(child(sa, "routeCode"), walk.narrative)) is not None:
        res["route"] = route
    performers = [
        {"function": {"coding": [tables.immunization_performer_function]}, "actor": who}
        for p in children(sa, "performer")
        if (who := actor(child(p, "assignedEntity"))) is not None
    ]
    if performers:
        res["performer"] = performers
    for obs in related(sa, tables.dose_number_observations):
        dose = _careful(walk, obs, "dose number", lambda obs=obs: _dose_number(obs))
        if dose is not None:
            applied: Json = {"doseNumberPositiveInt": dose}
            code = child(sa, "code")
            if code is not None and (series := code.get("displayName") or code.get("code")):
                applied["series"] = series
            res["protocolApplied"] = [applied]
            break
    _reactions(sa, res, walk)
    if author_and_notes(res, [sa], walk.narrative) is None:
        # **decision**: the profile requires an author; one the entry does not name is
        # the document's (CDA context conduction: the header's author propagates)
        found = author_extension(walk.root, lab_templates().actor_extension)
        if found is not None:
            res["extension"] = [*res.get("extension", []), found]
    walk.keep(res)


def _reactions(sa: etree._Element, res: Json, walk: Walk) -> None:
    """Each reaction (a CAUS observation) as `reaction`: its date, and as `detail` a
    contained Observation of what was observed. **decision**: the profile's
    `reasonReference` (the reference notes the conflict) would say the vaccine was given
    because of the reaction; FHIR's `reaction` says what followed it."""
    contained, reactions = [], []
    for rel in children(sa, "entryRelationship"):
        obs = child(rel, "observation") if rel.get("typeCode") == "CAUS" else None
        if obs is None:
            continue
        what = codeable(child(obs, "value"), walk.narrative)
        if what is None:
            walk.warn(obs, "reaction without a value left out")
            continue
        local = f"reaction-{len(contained) + 1}"
        detail: Json = {
            "resourceType": "Observation",
            "id": local,
            "status": "final",
            "code": codeable(child(obs, "code"), walk.narrative) or what,
            "valueCodeableConcept": what,
        }
        reaction: Json = {"detail": {"reference": f"#{local}"}}
        found = dt.effective(child(obs, "effectiveTime"), lambda m, obs=obs: walk.warn(obs, m))
        if found is not None:
            name, value = found
            when = value if name == "effectiveDateTime" else value.get("start")
            if when:
                detail["effectiveDateTime"] = when
                reaction["date"] = when
        if display := what.get("text") or next(
            (c["display"] for c in what.get("coding", []) if c.get("display")), None
        ):
            reaction["detail"]["display"] = display
        contained.append(detail)
        reactions.append(reaction)
    if reactions:
        res["contained"] = [*res.get("contained", []), *contained]
        res["reaction"] = reactions


def _dose_number(obs: etree._Element) -> int:
    value = child(obs, "value")
    if value is None:
        raise Unreadable("no value")
    _, number = dt.value(value, {})
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise Unreadable(f"{number!r} is not a positive integer")
    return number
