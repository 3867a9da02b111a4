"""CR-BIO body -> one DiagnosticReport per chapter and one Observation per report entry,
battery, isolate, result and prior result (pure: an lxml tree in, plain FHIR dicts out).

Members are `hasMember`, comments `note`, a prior result (entryRelationship REFR) the
extension workflow-supportingInfo of the result it precedes. Specimens become Specimen
resources (`lab_specimen`), named by `specimen` on the Observations of the statement that
holds them and of its members; the performing laboratory and the actors of the results
(`lab_participants`) are likewise those of the nearest statement that names them.

Which template is which kind comes from `data/cda_body.json` (`body_tables`). Each
resource's id is derived from the document's uniqueId and the element's position, so the
same document always yields the same ids. An element that cannot be read is skipped with
its reason in the `Walk`, never failing the filing; its parent is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda import lab_specimen
from fhir_server.cda.datatypes import (
    Unreadable,
    child,
    children,
    codeable,
    first_child,
    template_ids,
    v3,
)
from fhir_server.cda.entries import comment_text
from fhir_server.cda.extraction import Walk
from fhir_server.cda.header import Kids
from fhir_server.cda.header import child_elements as kids
from fhir_server.cda.lab_participants import (
    actor_extensions,
    header_organization,
    identifiers_of,
    performing_organization,
)
from fhir_server.terminology.body_tables import LabTemplates, lab_templates, observation_status

Json = dict[str, Any]

SUPPORTING_INFO = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"
# what a statement hands its members: laboratory, actors by role, specimen id
_Scope = tuple[Json | None, dict[str, list[Json]], str | None]
# the clinical statements an entryRelationship or component may hold
_STATEMENTS = ("observation", "organizer", "act", "procedure", "substanceAdministration")
# a statement's children, looked up in its `kids` (one pass over them per statement)
_CODE, _STATUS, _ID, _TIME = v3("code"), v3("statusCode"), v3("id"), v3("effectiveTime")
_VALUE, _INTERPRETATION, _METHOD = v3("value"), v3("interpretationCode"), v3("methodCode")
_RANGE, _RELATIONSHIP, _COMPONENT = v3("referenceRange"), v3("entryRelationship"), v3("component")
_TEMPLATE, _PERFORMER, _PARTICIPANT = v3("templateId"), v3("performer"), v3("participant")
_AUTHOR = v3("author")
_NONE: tuple[None] = (None,)


def _one(k: Kids, tag: str) -> etree._Element | None:
    return (k.get(tag) or _NONE)[0]


def _roots(k: Kids) -> list[str]:
    """The templateIds among a statement's `kids`."""
    return [t.get("root") or "" for t in k.get(_TEMPLATE, ())]


def _statement(container: etree._Element) -> etree._Element | None:
    return first_child(container, _STATEMENTS)


def _ref(observation_id: str) -> Json:
    return {"reference": f"Observation/{observation_id}"}


def _kind(k: Kids, tables: LabTemplates) -> str | None:
    return next((tables.components[t] for t in _roots(k) if t in tables.components), None)


def _parts(k: Kids) -> list[tuple[etree._Element, Kids]]:
    """The statements nested in one (entryRelationship of an act or observation,
    component of an organizer), in document order, each with its `kids`."""
    out = []
    for container in [*k.get(_RELATIONSHIP, ()), *k.get(_COMPONENT, ())]:
        if (inner := _statement(container)) is not None:
            out.append((inner, kids(inner)))
    return out


class _Lab:
    """The walk of one chapter: builds Observations, returns the ids of those it kept."""

    def __init__(
        self, walk: Walk, tables: LabTemplates, category: list[Json], performer: Json | None
    ) -> None:
        self.walk = walk
        self.tables = tables
        self.category = category
        # what the nearest statement names, for it and its members (`enter`, `leave`)
        self.performer = performer
        self.actors: dict[str, list[Json]] = {}  # by participation code
        self.specimen: str | None = None
        # the chapter's samples, named by its DiagnosticReport
        self.samples: list[str] = []
        # the sub-chapter's code: what a battery without a code of its own is called
        self.fallback: Json | None = None

    def base(self, el: etree._Element, k: Kids) -> Json:
        status = _one(k, _STATUS)
        obs: Json = {
            "resourceType": "Observation",
            "id": self.walk.id_of(el),
            "status": observation_status(status.get("code") if status is not None else None),
            "category": self.category,
        }
        if idents := identifiers_of(k.get(_ID, ())):
            obs["identifier"] = idents
        return obs

    def enter(self, k: Kids) -> _Scope:
        """Take the laboratory and the actors this statement names (if any) for it and its
        members; returns what to restore on `leave`."""
        saved = (self.performer, self.actors, self.specimen)
        if (org := performing_organization(k.get(_PERFORMER, ()))) is not None:
            self.performer = org
        if actors := actor_extensions(k.get(_PARTICIPANT, ()), k.get(_AUTHOR, ()), self.tables):
            self.actors = {**self.actors, **actors}
        return saved

    def leave(self, saved: _Scope) -> None:
        self.performer, self.actors, self.specimen = saved

    def stamp(self, obs: Json) -> None:
        """The laboratory, actors and specimen in force, on an Observation."""
        if self.performer is not None:
            obs["performer"] = [self.performer]
        if self.actors:
            actors = [e for code in sorted(self.actors) for e in self.actors[code]]
            obs["extension"] = [*obs.get("extension", []), *actors]
        if self.specimen is not None:
            obs["specimen"] = {"reference": f"Specimen/{self.specimen}"}

    def specimens(self, parts: list[tuple[etree._Element, Kids]]) -> None:
        """The samples collected for this statement: Specimens, the first one in force for
        the statement and its members (`leave` restores the ancestor's)."""
        kept = [
            self.walk.keep(lab_specimen.collection(part, self.walk, self.tables))
            for part, part_kids in parts
            if _kind(part_kids, self.tables) == "specimen"
        ]
        self.samples += kept
        if kept:
            self.specimen = kept[0]

    def members(self, k: Kids, obs: Json) -> None:
        """Children as hasMember; comments as notes; others skipped with a reason."""
        members, notes, prior = [], [], []
        parts = _parts(k)
        self.specimens(parts)
        for part, part_kids in parts:
            if part.getparent().get("typeCode") == "REFR":  # type: ignore[union-attr]
                # a prior result: an Observation of its own, named as supporting info
                if (earlier := self.result(part, part_kids)) is not None:
                    prior.append({"url": SUPPORTING_INFO, "valueReference": _ref(earlier)})
                continue
            kind = _kind(part_kids, self.tables)
            if kind == "specimen":
                continue
            if kind == "comment":
                if text := comment_text(part, self.walk.narrative):
                    notes.append({"text": text})
            elif kind in _HANDLERS:
                if (member := _HANDLERS[kind](self, part, part_kids)) is not None:
                    members.append(_ref(member))
            elif kind not in self.tables.ignored_kinds:
                self.walk.skip(part, f"unknown template {_template_list(part)}")
        if members:
            obs["hasMember"] = members
        if prior:
            obs["extension"] = prior
        if notes:
            obs["note"] = notes

    def timing(self, el: etree._Element, k: Kids, obs: Json) -> None:
        found = dt.effective(_one(k, _TIME), lambda m: self.walk.warn(el, m))
        if found is not None:
            obs[found[0]] = found[1]

    def group(self, el: etree._Element, k: Kids) -> str | None:
        """A report entry or a battery: its code (else the sub-chapter's), its members."""
        obs = self.base(el, k)
        code = codeable(_one(k, _CODE), self.walk.narrative) or self.fallback
        if code is None:
            self.walk.skip(el, "no code and no sub-chapter code")
            return None
        obs["code"] = code
        self.timing(el, k, obs)
        saved = self.enter(k)
        self.members(k, obs)
        self.stamp(obs)
        self.leave(saved)
        return self.walk.keep(obs)

    def isolate(self, el: etree._Element, k: Kids) -> str | None:
        """An isolate (organizer CLUSTER): the organism as its value."""
        obs = self.base(el, k)
        obs["code"] = codeable(_one(k, _CODE), self.walk.narrative) or {"text": "Isolat"}
        role = el.find(f"{v3('specimen')}/{v3('specimenRole')}")
        organism = child(role, "specimenPlayingEntity") if role is not None else None
        if organism is not None:
            concept = codeable(child(organism, "code"), self.walk.narrative)
            if concept is not None:
                obs["valueCodeableConcept"] = concept
        self.timing(el, k, obs)
        saved = self.enter(k)
        if role is not None:
            found = lab_specimen.isolate(role, self.walk, self.specimen)
            if found is not None:
                self.specimen = self.walk.keep(found)
        self.members(k, obs)
        self.stamp(obs)
        self.leave(saved)
        return self.walk.keep(obs)

    def result(self, el: etree._Element, k: Kids) -> str | None:
        obs = self.base(el, k)
        code = codeable(_one(k, _CODE), self.walk.narrative)
        if code is None:
            self.walk.skip(el, "result without code")
            return None
        obs["code"] = code
        self.timing(el, k, obs)
        try:
            self.result_value(el, k, obs)
        except Unreadable as exc:
            self.walk.skip(el, str(exc))
            return None
        interpretations = [
            c
            for i in k.get(_INTERPRETATION, ())
            if (c := codeable(i, self.walk.narrative)) is not None
        ]
        if interpretations:
            obs["interpretation"] = interpretations
        if (method := codeable(_one(k, _METHOD), self.walk.narrative)) is not None:
            obs["method"] = method
        ranges = self.reference_ranges(el, k)
        if ranges:
            obs["referenceRange"] = ranges
        saved = self.enter(k)
        self.members(k, obs)
        self.stamp(obs)
        self.leave(saved)
        return self.walk.keep(obs)

    def result_value(self, el: etree._Element, k: Kids, obs: Json) -> None:
        values = k.get(_VALUE, ())
        if not values:
            return  # a result may be reported by its interpretation or notes alone
        if len(values) > 1:
            self.walk.warn(el, f"{len(values)} values: the first is kept")
        name, value = dt.value(values[0], self.walk.narrative)
        obs[name] = value

    def reference_ranges(self, el: etree._Element, k: Kids) -> list[Json]:
        out = []
        for rr in k.get(_RANGE, ()):
            value = child(rr, "observationRange")
            value = child(value, "value") if value is not None else None
            if value is None:
                continue
            try:
                if dt.xsi_type(value) in ("IVL_PQ", None):
                    out.append(dt.range_of(value))
                else:
                    text = " ".join("".join(value.itertext()).split())
                    if text:
                        out.append({"text": text})
            except Unreadable as exc:
                self.walk.warn(el, f"reference range left out: {exc}")
        return out


# the members a statement holds, by kind; a table of the class's functions, not of bound
# methods: a walk holding its own methods would be a reference cycle, keeping each
# document's tree alive until the garbage collector's next pass
_HANDLERS: dict[str, Callable[[_Lab, etree._Element, Kids], str | None]] = {
    "result": _Lab.result,
    "battery": _Lab.group,
    "isolate": _Lab.isolate,
}


def _template_list(el: etree._Element) -> str:
    return ", ".join(template_ids(el)) or f"(none, <{etree.QName(el).localname}>)"


def _sections(body: etree._Element) -> list[etree._Element]:
    return [s for c in children(body, "component") if (s := child(c, "section")) is not None]


def _subsection_code(entry: etree._Element, tables: LabTemplates, walk: Walk) -> Json | None:
    section = entry.getparent()
    if section is None or not set(template_ids(section)) & tables.subchapter_sections:
        return None
    return codeable(child(section, "code"), walk.narrative)


def extract_lab(body: etree._Element, walk: Walk) -> None:
    """Every lab chapter of a structuredBody into `walk` (other sections are not lab
    results: the PDF copy, comments of the document)."""
    tables = lab_templates()
    lab_category = {"coding": [tables.observation_category]}
    laboratory = header_organization(walk.root)
    for section in _sections(body):
        if not set(template_ids(section)) & tables.chapter_sections:
            continue
        chapter = codeable(child(section, "code"), walk.narrative)
        category = [lab_category, *([chapter] if chapter else [])]
        lab = _Lab(walk, tables, category, laboratory)
        results = []
        for entry in section.iter(v3("entry")):
            statement = _statement(entry)
            if statement is None:
                walk.skip(entry, "entry without a statement")
                continue
            # the templates sit on the entry (CI-SIS) or on its act (some senders)
            statement_kids = kids(statement)
            if not set(template_ids(entry) + _roots(statement_kids)) & tables.report_entries:
                walk.skip(entry, f"unknown entry template {_template_list(entry)}")
                continue
            lab.fallback = _subsection_code(entry, tables, walk)
            kept = lab.group(statement, statement_kids)
            if kept is not None:
                results.append({"reference": f"Observation/{kept}"})
        if results:
            report = _report(walk.id_of(section), tables, chapter, results)
            if laboratory is not None:
                report["performer"] = [laboratory]
            if lab.samples:
                report["specimen"] = [{"reference": f"Specimen/{s}"} for s in lab.samples]
            walk.keep(report)


def _report(id: str, tables: LabTemplates, chapter: Json | None, results: list[Json]) -> Json:
    category = [{"coding": [tables.report_category]}, *([chapter] if chapter else [])]
    return {
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": "final",
        "category": category,
        "code": {"coding": [tables.report_code]},
        "result": results,
    }
