"""Who did what in a CR-BIO (pure): the laboratory that performed the results and the
actors of the results, as references that name them without creating resources.

- The performing laboratory: the `representedOrganization` of the nearest `performer`
  (on the statement, else an ancestor's, else the header's `serviceEvent/performer`),
  as `Observation.performer` / `DiagnosticReport.performer`: a Reference by identifier
  (its id) and display (its name). **decision**: no Organization resources are created;
  the FR profile allows one performer, FROrganizationDocument, which a logical
  reference satisfies.
- The actors of the results (participants AUTHEN validator, RESP responsible, DEV
  device) as the FR Document Core actor extension on the Observation: `type` PART,
  `typeCode` the participation code, `actor` a Reference by identifier and display.
  The statement's `author` is the same extension with `type` AUT (the profile's
  `author` slice), keyed AUT. Each role is the nearest statement's that names one: a
  device named on a result joins the validator named on its report entry.

`author_extension` reads the author of any CDA statement: the patient-summary entries
name theirs the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lxml import etree

from fhir_server.cda.datatypes import child, children, v3
from fhir_server.cda.header import II
from fhir_server.cda.resources import identifier
from fhir_server.terminology.body_tables import LabTemplates

Json = dict[str, Any]


def identifiers(el: etree._Element | None) -> list[Json]:
    """An element's `<id>`s as FHIR Identifiers (null-flavoured ones left out)."""
    if el is None:
        return []
    return identifiers_of(children(el, "id"))


def identifiers_of(ids: Iterable[etree._Element]) -> list[Json]:
    """`<id>` elements as FHIR Identifiers (null-flavoured ones left out)."""
    return [
        identifier(II(i.get("root") or "", i.get("extension")))
        for i in ids
        if i.get("root") and not i.get("nullFlavor")
    ]


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return " ".join("".join(el.itertext()).split()) or None


def logical_reference(ids: list[Json], display: str | None) -> Json | None:
    """A Reference that names its target by identifier and display (none: None)."""
    ref: Json = {}
    if ids:
        ref["identifier"] = ids[0]
    if display:
        ref["display"] = display
    return ref or None


def _person_name(el: etree._Element | None) -> str | None:
    name = el.find(v3("name")) if el is not None else None
    if name is None:
        return None
    parts = [_text(child(name, p)) for p in ("given", "family")]
    return " ".join(p for p in parts if p) or _text(name)


def performing_organization(performers: Iterable[etree._Element]) -> Json | None:
    """The laboratory one of a statement's `performer`s names (None when none names one)."""
    for performer in performers:
        org = performer.find(f"{v3('assignedEntity')}/{v3('representedOrganization')}")
        if org is not None:
            found = logical_reference(identifiers(org), _text(child(org, "name")))
            if found is not None:
                return found
    return None


def header_organization(root: etree._Element) -> Json | None:
    """The laboratory of the header's service event (the default performer)."""
    service = root.find(f"{v3('documentationOf')}/{v3('serviceEvent')}")
    return performing_organization(children(service, "performer")) if service is not None else None


def person_reference(performer: etree._Element) -> Json | None:
    """The person a `performer` (assignedEntity) names, as a logical reference."""
    entity = child(performer, "assignedEntity")
    if entity is None:
        return None
    return logical_reference(identifiers(entity), _person_name(child(entity, "assignedPerson")))


def _named(el: etree._Element, device_tag: str, person_tag: str) -> Json | None:
    """A role (participantRole, assignedAuthor): a device by its model or software name,
    else a person by name; with the role's identifier."""
    device = child(el, device_tag)
    if device is not None:
        display = _text(child(device, "manufacturerModelName")) or _text(
            child(device, "softwareName")
        )
    else:
        display = _person_name(child(el, person_tag))
    return logical_reference(identifiers(el), display)


def _author(author: etree._Element) -> Json | None:
    assigned = child(author, "assignedAuthor")
    if assigned is None:
        return None
    return _named(assigned, "assignedAuthoringDevice", "assignedPerson")


def _extension(url: str, actor_type: str, actor: Json, type_code: Json | None = None) -> Json:
    parts: list[Json] = [{"url": "type", "valueCode": actor_type}]
    if type_code is not None:
        parts.append({"url": "typeCode", "valueCodeableConcept": type_code})
    parts.append({"url": "actor", "valueReference": actor})
    return {"url": url, "extension": parts}


def author_extension(el: etree._Element, url: str) -> Json | None:
    """The FR actor extension (`type` AUT) of this statement's first author that names
    someone; None when it has none."""
    for author in children(el, "author"):
        if (actor := _author(author)) is not None:
            return _extension(url, "AUT", actor)
    return None


def actor_extensions(
    participants: Iterable[etree._Element],
    authors: Iterable[etree._Element],
    tables: LabTemplates,
) -> dict[str, list[Json]]:
    """The FR actor extensions of a statement's first author naming someone (AUT) and of
    its `participant`s AUTHEN, RESP and DEV, by participation code."""
    out: dict[str, list[Json]] = {}
    for author in authors:
        if (actor := _author(author)) is not None:
            out["AUT"] = [_extension(tables.actor_extension, "AUT", actor)]
            break
    for participant in participants:
        code = participant.get("typeCode") or ""
        role = child(participant, "participantRole")
        if code not in tables.result_actors or role is None:
            continue
        actor = _named(role, "playingDevice", "playingEntity")
        if actor is None:
            continue
        type_code = {"coding": [{"system": tables.participation_system, "code": code}]}
        out.setdefault(code, []).append(
            _extension(tables.actor_extension, "PART", actor, type_code)
        )
    return out
