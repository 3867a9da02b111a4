"""CR-BIO specimens as FHIR Specimen resources (pure), per the ANS ConceptMap
FRSpecimenLMCDAFHIR and the FRSpecimenDocument profile:

- specimen collection (procedure `.3.77` / `1.3.6.1.4.1.19376.1.3.1.2`):
  `participant[@typeCode=PRD]/participantRole/id` -> `identifier`,
  `playingEntity/code` -> `type`, `effectiveTime` -> `collection.collected[x]`,
  `performer` -> `collection.collector` (a logical reference: no resource created),
  the SPRECEIVE act's time -> `receivedTime`; **GUESS**: the procedure's code (a NABM
  sampling act in the ANS examples) -> `collection.method`.
- an isolate's `specimenRole/id` -> a Specimen of its own, whose `parent` is the
  sample it was isolated from; the organism stays the isolate Observation's value.

**decision**: `subject` is the patient (the profile's Substance subject is for samples
taken outside the patient, which a CR-BIO does not say): it makes the Specimen part of
the patient's record, ruled by its document like every derived resource.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda import datatypes as dt
from fhir_server.cda.datatypes import child, children, codeable, template_ids, v3
from fhir_server.cda.extraction import Walk
from fhir_server.cda.lab_participants import identifiers, person_reference
from fhir_server.terminology.body_tables import LabTemplates

Json = dict[str, Any]

_COLLECTED = {"effectiveDateTime": "collectedDateTime", "effectivePeriod": "collectedPeriod"}


def _received(el: etree._Element, tables: LabTemplates) -> str | None:
    for relation in children(el, "entryRelationship"):
        act = child(relation, "act")
        if act is None or not set(template_ids(act)) & tables.specimen_received:
            continue
        time = child(act, "effectiveTime")
        if time is not None and (value := time.get("value") or _low(time)):
            return dt.timestamp(value)
    return None


def _low(time: etree._Element) -> str | None:
    low = child(time, "low")
    return low.get("value") if low is not None else None


def collection(el: etree._Element, walk: Walk, tables: LabTemplates) -> Json:
    """The Specimen of a specimen-collection procedure."""
    role = el.find(f"{v3('participant')}[@typeCode='PRD']/{v3('participantRole')}")
    specimen: Json = {"resourceType": "Specimen", "id": walk.id_of(el)}
    if ids := identifiers(role):
        specimen["identifier"] = ids
    entity = role.find(f"{v3('playingEntity')}/{v3('code')}") if role is not None else None
    if (kind := codeable(entity, walk.narrative)) is not None:
        specimen["type"] = kind
    if (received := _received(el, tables)) is not None:
        specimen["receivedTime"] = received
    collected: Json = {}
    found = dt.effective(child(el, "effectiveTime"), lambda m: walk.warn(el, m))
    if found is not None:
        collected[_COLLECTED[found[0]]] = found[1]
    for performer in children(el, "performer"):
        if (collector := person_reference(performer)) is not None:
            collected["collector"] = collector
            break
    if (method := codeable(child(el, "code"), walk.narrative)) is not None:
        collected["method"] = method
    if collected:
        specimen["collection"] = collected
    return specimen


def isolate(role: etree._Element, walk: Walk, parent: str | None) -> Json | None:
    """The Specimen an isolate's `specimenRole` names (None when it has no id)."""
    ids = identifiers(role)
    if not ids:
        return None
    specimen: Json = {"resourceType": "Specimen", "id": walk.id_of(role), "identifier": ids}
    if parent is not None:
        specimen["parent"] = [{"reference": f"Specimen/{parent}"}]
    return specimen
