"""Patient-summary sections (VSM, LDL-SES, IPS-FR, VAC, VAC-NOTE), pure like the lab
walk: problems and history -> Condition, allergies -> AllergyIntolerance (here),
treatments -> MedicationStatement and vaccinations -> Immunization (`administrations`),
procedures -> Procedure (`procedures`), vital signs and simple observations -> Observation
(`summary_observations`).

A section is known by its templateId, an entry by its statement's; an entry of a known
section that is not of its kind is skipped and reported. Only events (moodCode EVN) are
read. A concern act (problems, allergies) holds one or more SUBJ observations; each
observation is one resource. Its clinical status comes from the status observation it
holds, else from the concern's statusCode (active -> active, completed -> resolved).
Reasons that name a problem of the document are resolved once every section is read
(`internal_references`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.administrations import immunization, medication_statement
from fhir_server.cda.datatypes import Unreadable, child, children, codeable, template_ids, v3
from fhir_server.cda.entries import author_and_notes, related, statement, value_code
from fhir_server.cda.extraction import Walk
from fhir_server.cda.internal_references import References
from fhir_server.cda.procedures import procedure
from fhir_server.cda.summary_observations import simple_observation, vital_signs
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


def _sub_value(obs: etree._Element, templates: frozenset[str]) -> etree._Element | None:
    """The value of the first sub-observation of that kind (severity, certainty...)."""
    for inner in related(obs, templates):
        value = child(inner, "value")
        if value is not None and (value.get("code") or child(value, "originalText") is not None):
            return value
    return None


def _certainty(obs: etree._Element, tables: SummaryTables) -> str | None:
    for inner in related(obs, tables.certainty_observations):
        if code := value_code(inner):
            return code
    return None


def _condition(obs: etree._Element, concern: etree._Element, walk: Walk, refs: References) -> None:
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
    certainty = _certainty(obs, tables)
    if certainty in tables.condition_verification_codes:
        res["verificationStatus"] = _status_concept(tables.condition_verification_system, certainty)
    severity = _sub_value(obs, tables.severity_observations)
    if (concept := codeable(severity, walk.narrative)) is not None:
        res["severity"] = concept
    # the observation's author, else the concern's; comments on either
    author_and_notes(res, [obs, concern], walk.narrative)
    refs.condition([concern, obs], res)
    walk.keep(res)


def _reaction(mfst: etree._Element, walk: Walk, tables: SummaryTables) -> Json | None:
    """A manifestation (MFST) as a reaction: what was observed, its severity and onset."""
    manifestation = codeable(child(mfst, "value"), walk.narrative)
    if manifestation is None:
        walk.warn(mfst, "reaction without a manifestation left out")
        return None
    reaction: Json = {"manifestation": [manifestation]}
    severity = _sub_value(mfst, tables.severity_observations)
    if severity is not None and (grade := tables.reaction_severity.get(severity.get("code") or "")):
        reaction["severity"] = grade
    onset, _ = _bounds(child(mfst, "effectiveTime"), walk, mfst)
    if onset:
        reaction["onset"] = onset
    return reaction


def _allergy(obs: etree._Element, concern: etree._Element, walk: Walk, refs: References) -> None:
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
    verification = tables.allergy_verification.get(_certainty(obs, tables) or "")
    if verification is not None:
        res["verificationStatus"] = _status_concept(
            tables.allergy_verification_system, verification
        )
    for inner in related(obs, tables.criticality_observations):
        if (code := value_code(inner)) in tables.allergy_criticality_codes:
            res["criticality"] = code
            break
    reactions = [
        r
        for mfst in children(obs, "entryRelationship")
        if mfst.get("typeCode") == "MFST"
        and (inner := child(mfst, "observation")) is not None
        and (r := _reaction(inner, walk, tables)) is not None
    ]
    if reactions:
        res["reaction"] = reactions
    author_and_notes(res, [obs, concern], walk.narrative)
    walk.keep(res)


ConcernReader = Callable[[etree._Element, etree._Element, Walk, References], None]


def _concerns(read: ConcernReader) -> Callable[[etree._Element, Walk, References], None]:
    """A concern act's handler: one resource per SUBJ observation it holds."""

    def handle(concern: etree._Element, walk: Walk, refs: References) -> None:
        subjects = _subjects(concern)
        if not subjects:
            walk.skip(concern, "concern without an observation")
        for obs in subjects:
            try:
                read(obs, concern, walk, refs)
            except Unreadable as exc:
                walk.skip(obs, str(exc))

    return handle


# section kind (`cda_body.json` patient_summary.sections) -> handler of one of its entries
_HANDLERS: dict[str, Callable[[etree._Element, Walk, References], None]] = {
    "problems": _concerns(_condition),
    "allergies": _concerns(_allergy),
    "treatments": medication_statement,
    "immunizations": immunization,
    "procedures": procedure,
    "vital_signs": vital_signs,
}


def _entry(entry: etree._Element, kind: str | None, walk: Walk, refs: References) -> None:
    tables = summary_tables()
    found = statement(entry)
    if found is None or found.get("moodCode", "EVN") != "EVN":
        return  # not an event: an intent, a recommendation, a care plan
    templates = set(template_ids(found))
    if templates & tables.simple_observations:
        simple_observation(found, walk)
    elif kind is None:
        return
    elif not templates & tables.entry_templates[kind]:
        walk.skip(entry, f"not a {kind.replace('_', ' ')} entry")
    else:
        _HANDLERS[kind](found, walk, refs)


def extract_summary(body: etree._Element, walk: Walk) -> None:
    tables = summary_tables()
    refs = References()
    for section in _sections(body):
        kind = next(
            (tables.sections[t] for t in template_ids(section) if t in tables.sections), None
        )
        for entry in children(section, "entry"):
            try:
                _entry(entry, kind, walk, refs)
            except Unreadable as exc:
                walk.skip(entry, str(exc))
    refs.resolve(walk.narrative)
