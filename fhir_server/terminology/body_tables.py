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
    lab = _data()["lab"]
    return LabTemplates(
        chapter_sections=frozenset(lab["chapter_sections"]),
        subchapter_sections=frozenset(lab["subchapter_sections"]),
        report_entries=frozenset(lab["report_entries"]),
        components=dict(lab["components"]),
        ignored_kinds=frozenset(lab["ignored_kinds"]),
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
        entry_templates={k: frozenset(v) for k, v in t["entry_templates"].items()},
        status_observations=frozenset(t["status_observations"]),
        condition_clinical_system=t["condition_clinical_system"],
        allergy_clinical_system=t["allergy_clinical_system"],
        allergy_clinical_codes=frozenset(t["allergy_clinical_codes"]),
        clinical_status=dict(t["clinical_status"]),
        concern_status=dict(t["concern_status"]),
        allergy_categories=dict(t["allergy_categories"]),
        data_absent_reason=dict(t["data_absent_reason"]),
        vital_sign_observations=frozenset(t["vital_sign_observations"]),
        simple_observations=frozenset(t["simple_observations"]),
        severity_observations=frozenset(t["severity_observations"]),
        certainty_observations=frozenset(t["certainty_observations"]),
        criticality_observations=frozenset(t["criticality_observations"]),
        dose_number_observations=frozenset(t["dose_number_observations"]),
        internal_references=frozenset(t["internal_references"]),
        condition_verification_system=t["condition_verification_system"],
        condition_verification_codes=frozenset(t["condition_verification_codes"]),
        allergy_verification_system=t["allergy_verification_system"],
        allergy_verification=dict(t["allergy_verification"]),
        allergy_criticality_codes=frozenset(t["allergy_criticality_codes"]),
        reaction_severity=dict(t["reaction_severity"]),
        procedure_status=dict(t["procedure_status"]),
        default_procedure_status=t["default_procedure_status"],
        period_units=dict(t["period_units"]),
        vital_signs_category=dict(t["vital_signs_category"]),
        immunization_performer_function=dict(t["immunization_performer_function"]),
    )


@cache
def profile_rows() -> tuple[ProfileRow, ...]:
    return tuple(
        ProfileRow(r["resourceType"], r["profile"], r.get("category"), r.get("code"))
        for r in _data()["profiles"]
    )
