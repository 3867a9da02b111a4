"""The tables that drive structured-content extraction (`data/cda_body.json`), loaded once.

Which CDA templates are lab chapters, entries, results, batteries, isolates or comments;
which code-system OID is which FHIR URI; how a CDA statusCode or xsi:type reads in FHIR.
A reviewer reads and amends the JSON; this module only indexes it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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
    sections: dict[str, str]  # section templateId root -> problems | allergies | treatments...
    entry_templates: dict[str, frozenset[str]]  # kind -> its entries' templateId roots
    status_observations: frozenset[str]
    condition_clinical_system: str
    allergy_clinical_system: str
    allergy_clinical_codes: frozenset[str]  # an allergy is active, inactive or resolved
    clinical_status: dict[str, str]
    concern_status: dict[str, str]
    allergy_categories: dict[str, str]  # SNOMED code of the CDA observation -> category
    data_absent_reason: dict[str, str]
    vital_sign_observations: frozenset[str]
    simple_observations: frozenset[str]  # read in any section (LDL-SES MED-309)
    severity_observations: frozenset[str]
    certainty_observations: frozenset[str]
    criticality_observations: frozenset[str]
    dose_number_observations: frozenset[str]
    internal_references: frozenset[str]  # a reason (RSON) naming a problem of the document
    condition_verification_system: str
    condition_verification_codes: frozenset[str]
    allergy_verification_system: str
    allergy_verification: dict[str, str]  # certainty code -> allergy verification status
    allergy_criticality_codes: frozenset[str]
    reaction_severity: dict[str, str]  # SNOMED severity -> mild | moderate | severe
    procedure_status: dict[str, str]
    default_procedure_status: str
    period_units: dict[str, str]  # UCUM unit of a PIVL_TS period -> Timing periodUnit
    vital_signs_category: dict[str, str]
    immunization_performer_function: dict[str, str]


@dataclass(frozen=True)
class ProfileRow:
    """The FR Document Core profile a derived resource claims when it matches the row."""

    resource_type: str
    profile: str
    category: str | None = None  # a code of one of its categories
    code: str | None = None  # a code of its code


@cache
def _data() -> dict[str, Any]:
    return _load("cda_body")


@cache
def lab_templates() -> LabTemplates:
    t = _data()["lab"]
    return LabTemplates(**{f.name: _typed(str(f.type), t[f.name]) for f in fields(LabTemplates)})


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


def _typed(annotation: str, raw: Any) -> Any:
    """A JSON value as the field's type says (sets of template roots, maps, strings)."""
    if annotation.startswith("frozenset"):
        return frozenset(raw)
    if annotation.startswith("dict[str, frozenset"):
        return {k: frozenset(v) for k, v in raw.items()}
    if annotation.startswith("dict"):
        return dict(raw)
    return raw


@cache
def summary_tables() -> SummaryTables:
    t = _data()["patient_summary"]
    return SummaryTables(**{f.name: _typed(str(f.type), t[f.name]) for f in fields(SummaryTables)})


@cache
def profile_rows() -> tuple[ProfileRow, ...]:
    return tuple(
        ProfileRow(r["resourceType"], r["profile"], r.get("category"), r.get("code"))
        for r in _data()["profiles"]
    )


@cache
def profile_rows_of(resource_type: str) -> tuple[ProfileRow, ...]:
    """The profile rows of one resource type, in the table's order."""
    return tuple(r for r in profile_rows() if r.resource_type == resource_type)
