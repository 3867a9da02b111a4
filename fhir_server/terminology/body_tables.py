"""The tables that drive structured-content extraction (`data/cda_body.json`), loaded once.

Which CDA templates are lab chapters, entries, results, batteries, isolates or comments;
which code-system OID is which FHIR URI; how a CDA statusCode or xsi:type reads in FHIR.
A reviewer reads and amends the JSON; this module only indexes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.terminology.valuesets import _load, fhir_system


@dataclass(frozen=True)
class LabTemplates:
    chapter_sections: frozenset[str]
    subchapter_sections: frozenset[str]
    report_entries: frozenset[str]
    components: dict[str, str]  # templateId root -> kind (result, battery, isolate...)
    ignored_kinds: frozenset[str]  # kinds read by their parent, not extracted on their own
    specimen_received: frozenset[str]  # the SPRECEIVE act of a specimen collection
    result_actors: frozenset[str]  # participant typeCodes read as actors of the results
    actor_extension: str  # FR Document Core actor extension URL
    participation_system: str  # the system of those typeCodes
    report_code: dict[str, str]
    report_category: dict[str, str]
    observation_category: dict[str, str]


@dataclass(frozen=True)
class SummaryTables:
    sections: dict[str, str]  # section templateId root -> problems | allergies
    concern_entries: dict[str, frozenset[str]]  # kind -> concern entry templateId roots
    status_observations: frozenset[str]
    condition_clinical_system: str
    allergy_clinical_system: str
    allergy_clinical_codes: frozenset[str]  # an allergy is active, inactive or resolved
    clinical_status: dict[str, str]
    concern_status: dict[str, str]
    allergy_categories: dict[str, str]  # SNOMED code of the CDA observation -> category
    data_absent_reason: dict[str, str]


@cache
def _data() -> dict[str, Any]:
    return _load("cda_body")


@cache
def lab_templates() -> LabTemplates:
    lab = _data()["lab"]
    return LabTemplates(
        chapter_sections=frozenset(lab["chapter_sections"]),
        subchapter_sections=frozenset(lab["subchapter_sections"]),
        report_entries=frozenset(lab["report_entries"]),
        components=dict(lab["components"]),
        ignored_kinds=frozenset(lab["ignored_kinds"]),
        specimen_received=frozenset(lab["specimen_received"]),
        result_actors=frozenset(lab["result_actors"]),
        actor_extension=str(lab["actor_extension"]),
        participation_system=str(lab["participation_system"]),
        report_code=dict(lab["report_code"]),
        report_category=dict(lab["report_category"]),
        observation_category=dict(lab["observation_category"]),
    )


def code_system(oid: str) -> str:
    """FHIR Coding.system of a CDA codeSystem OID (the body table first, then the
    header's `systems.json`, else `urn:oid:`)."""
    return _data()["code_systems"].get(oid) or fhir_system(oid)


def observation_status(cda_status: str | None) -> str:
    data = _data()
    if cda_status is None:
        return str(data["default_observation_status"])
    return str(data["observation_status"].get(cda_status, data["default_observation_status"]))


def value_kind(xsi_type: str) -> str | None:
    """How a value of this (local) xsi:type is read: quantity, interval, concept..."""
    return _data()["value_types"].get(xsi_type)


@cache
def summary_tables() -> SummaryTables:
    t = _data()["patient_summary"]
    return SummaryTables(
        sections=dict(t["sections"]),
        concern_entries={k: frozenset(v) for k, v in t["concern_entries"].items()},
        status_observations=frozenset(t["status_observations"]),
        condition_clinical_system=t["condition_clinical_system"],
        allergy_clinical_system=t["allergy_clinical_system"],
        allergy_clinical_codes=frozenset(t["allergy_clinical_codes"]),
        clinical_status=dict(t["clinical_status"]),
        concern_status=dict(t["concern_status"]),
        allergy_categories=dict(t["allergy_categories"]),
        data_absent_reason=dict(t["data_absent_reason"]),
    )
