"""The search parameters this server supports, as data: one row per (resource type, name).

Everything else in `search/` is driven by this table: `index.py` extracts terms along
`paths`, `parse.py` accepts only names found here, `describe_params` feeds the
CapabilityStatement and `scripts/gen_search_parameters.py` writes the SearchParameter
resources in `profiles/` (a test keeps them in sync).

Paths are FHIRPath-like: dot-separated element names from the resource root, lists are
flattened at every step, and `ext(URL)` selects the extensions with that url.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from fhir_server.fhir.extensions import (
    DOCUMENT_AUTHOR_URL,
    DOCUMENT_CLASS_URL,
    DOCUMENT_STATUS_URL,
    FILED_AT_URL,
    IS_ARCHIVED_URL,
    LEGACY_IS_ARCHIVED_URL,
    SOURCE_DOCUMENT_URL,
)

ParamType = Literal["token", "reference", "date", "string", "uri", "quantity"]

CANONICAL_BASE = "https://dmp-fhir.example.org/fhir/SearchParameter"


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: ParamType
    paths: tuple[str, ...]
    description: str
    # reference: the types a bare id may point at (the first is tried for a bare id)
    targets: tuple[str, ...] = ()
    # reference: only references to these types are indexed (AuditEvent.patient)
    only_targets: bool = False
    # reference: Reference.identifier (and the identifier of a contained target) is
    # indexed as the token "<name>:identifier", searched with `name:identifier` or
    # `name.identifier`
    by_identifier: bool = False
    # reference: its Patient value is the compartment owner kept in the `patient`
    # column/field, so a search by it drives from that index
    compartment: bool = False
    # date: may be used in _sort
    sortable: bool = False
    # token: the value indexed when the resource has none (an absent flag means false)
    absent: str | None = None


def _p(name: str, type: ParamType, paths: str, description: str, **kw: Any) -> SearchParam:
    return SearchParam(name, type, tuple(paths.split(" | ")), description, **kw)


_PATIENT_REF = {"targets": ("Patient",), "compartment": True}

_DOCUMENT_REFERENCE = [
    _p(
        "patient", "reference", "subject", "Who the document is about (the Patient)", **_PATIENT_REF
    ),
    _p(
        "subject",
        "reference",
        "subject",
        "Who the document is about (PDSm: a Patient)",
        **_PATIENT_REF,
    ),
    _p(
        "identifier",
        "token",
        "masterIdentifier | identifier",
        "Master (XDS uniqueId) or other (XDS entryUUID / logicalId) identifier",
    ),
    _p("status", "token", "status", "current | superseded (PDSm has no entered-in-error)"),
    _p("category", "token", "category", "Document class (XDS classCode, TRE_A03/J06)"),
    _p("type", "token", "type", "Document type (XDS typeCode, J07)"),
    _p("date", "date", "date", "When the reference was created", sortable=True),
    _p(
        "period",
        "date",
        "context.period",
        "Time of service documented (XDS serviceStart/StopTime)",
        sortable=True,
    ),
    _p("event", "token", "context.event", "Main clinical acts documented (XDS eventCodeList)"),
    _p(
        "facility", "token", "context.facilityType", "Kind of facility (XDS healthcareFacilityType)"
    ),
    _p("setting", "token", "context.practiceSetting", "Practice setting (XDS practiceSettingCode)"),
    _p("security-label", "token", "securityLabel", "Confidentiality and masking codes (J08)"),
    _p("format", "token", "content.format", "Format/content rules (XDS formatCode, J10)"),
    _p(
        "author",
        "reference",
        "author",
        "Who authored the document (by reference, or by identifier: author.identifier)",
        targets=("Practitioner", "PractitionerRole", "Organization", "Device", "Patient"),
        by_identifier=True,
    ),
    _p(
        "relatesto",
        "reference",
        "relatesTo.target",
        "Target of a relationship (replaces, transforms...)",
        targets=("DocumentReference",),
    ),
    _p(
        "related",
        "reference",
        "relatesTo.target | context.related",
        "A related document: the target of relatesTo (TD3.1a, the document a version "
        "replaces) or context.related (XDS referenceIdList); by reference or identifier",
        targets=("DocumentReference",),
        by_identifier=True,
    ),
    _p(
        "custodian",
        "reference",
        "custodian",
        "The organisation that keeps the document (by reference, or by identifier: the "
        "FINESS of the filing establishment)",
        targets=("Organization",),
        by_identifier=True,
    ),
    _p("relation", "token", "relatesTo.code", "replaces | transforms | signs | appends"),
    _p("contenttype", "token", "content.attachment.contentType", "MIME type of the content"),
    _p("creation", "date", "content.attachment.creation", "Date the attachment was created"),
    # PDSm ITI-67 additions (st_recherche_fiche)
    _p(
        "isArchived",
        "token",
        f"ext({IS_ARCHIVED_URL}).valueBoolean | ext({LEGACY_IS_ARCHIVED_URL}).valueBoolean",
        "Archived by the patient (PDSm isArchived extension; absent means false)",
        absent="false",
    ),
    _p("period-start", "date", "context.period.start", "Start of the service documented"),
    _p("period-end", "date", "context.period.end", "End of the service documented"),
    # the filing instant: the start of the INVISIBLE_PATIENT embargo, which the store's
    # visibility filter compiles on (`search.visibility.FILED_PARAM`)
    _p(
        "filed",
        "date",
        f"ext({FILED_AT_URL}).valueInstant",
        "When the document was filed on this server (server-set)",
    ),
]

_PATIENT = [
    _p("identifier", "token", "identifier", "A patient identifier (INS-NIR, INS-NIA, IPP...)"),
    _p("family", "string", "name.family", "A portion of the family name"),
    _p("given", "string", "name.given", "A portion of a given name"),
    _p(
        "name",
        "string",
        "name.family | name.given | name.text | name.prefix | name.suffix",
        "A portion of any part of a name",
    ),
    _p("birthdate", "date", "birthDate", "The date of birth", sortable=True),
    _p("gender", "token", "gender", "male | female | other | unknown"),
    _p("active", "token", "active", "Whether the record is active (DMP open)"),
    _p(
        "general-practitioner",
        "reference",
        "generalPractitioner",
        "The médecin traitant (by reference, or by identifier such as the RPPS)",
        targets=("Practitioner", "PractitionerRole", "Organization"),
        by_identifier=True,
    ),
]

_CONSENT = [
    _p("patient", "reference", "patient", "Who the consent applies to", **_PATIENT_REF),
    _p("status", "token", "status", "draft | proposed | active | rejected | inactive"),
    _p("category", "token", "category", "Classification of the consent statement"),
    _p("date", "date", "dateTime", "When the consent was agreed to", sortable=True),
    _p(
        "actor",
        "reference",
        "provision.actor.reference",
        "Who the provision applies to (by reference, or by identifier such as the RPPS)",
        targets=("Practitioner", "PractitionerRole", "Organization", "RelatedPerson", "Patient"),
        by_identifier=True,
    ),
    _p("purpose", "token", "provision.purpose", "Context of activities covered (access modes)"),
]

_AUDIT_EVENT = [
    _p(
        "patient",
        "reference",
        "entity.what | agent.who",
        "A Patient among the entities or agents",
        # not `compartment`: an event may name several patients, the column keeps one
        targets=("Patient",),
        only_targets=True,
    ),
    _p(
        "entity",
        "reference",
        "entity.what",
        "Specific instance of a resource",
        targets=("DocumentReference", "Patient", "Binary", "List", "Consent"),
    ),
    _p(
        "agent",
        "reference",
        "agent.who",
        "Who participated (by reference, or by identifier such as the RPPS)",
        targets=("Practitioner", "PractitionerRole", "Organization", "Device", "Patient"),
        by_identifier=True,
    ),
    _p("date", "date", "recorded", "Time when the event was recorded", sortable=True),
    _p("type", "token", "type", "Type/identifier of the event"),
    _p("subtype", "token", "subtype", "More specific type/id for the event (e.g. ITI-67)"),
    _p("action", "token", "action", "C | R | U | D | E"),
    _p("outcome", "token", "outcome", "0 | 4 | 8 | 12"),
]

_LIST = [
    _p("patient", "reference", "subject", "If all resources have the same subject", **_PATIENT_REF),
    _p("code", "token", "code", "What the list is for (SubmissionSet, Folder)"),
    _p("identifier", "token", "identifier", "Business identifier (XDS uniqueId, entryUUID)"),
    _p("date", "date", "date", "When the list was prepared", sortable=True),
    _p(
        "source",
        "reference",
        "source",
        "Who and/or what defined the list contents (the author)",
        targets=("Practitioner", "PractitionerRole", "Patient", "Device"),
    ),
    _p("status", "token", "status", "current | retired | entered-in-error"),
]

_COMMUNICATION = [
    _p("patient", "reference", "subject", "Focus of the message", **_PATIENT_REF),
    _p(
        "about",
        "reference",
        "about",
        "What the message is about (the document, the professional, the AuditEvent)",
        targets=("DocumentReference", "AuditEvent", "Practitioner"),
    ),
    _p("date", "date", "sent", "When sent", sortable=True),
    _p("category", "token", "category", "Message category"),
]

# the facts of its source document each derived resource carries (`fhir.derived`), which
# the store's visibility filter compiles against (`search.visibility.DERIVED_PARAMS`)
_DOCUMENT_FACTS = [
    _p(
        "document",
        "reference",
        f"ext({SOURCE_DOCUMENT_URL}).valueReference",
        "The filed document this was extracted from",
        targets=("DocumentReference",),
    ),
    _p("security-label", "token", "meta.security", "Security labels of the source document"),
    _p(
        "document-class",
        "token",
        f"ext({DOCUMENT_CLASS_URL}).valueCoding",
        "Class of the source document (TRE_A03)",
    ),
    _p(
        "document-author",
        "token",
        f"ext({DOCUMENT_AUTHOR_URL}).valueIdentifier",
        "RPPS of an author of the source document",
    ),
    _p(
        "filed",
        "date",
        f"ext({FILED_AT_URL}).valueInstant",
        "When the source document was filed on this server",
    ),
    _p(
        "document-status",
        "token",
        f"ext({DOCUMENT_STATUS_URL}).valueCode",
        "Status of the source document: current | superseded (replaced); searches leave "
        "out the data of replaced documents unless this parameter is given",
    ),
]

_OBSERVATION = [
    _p("patient", "reference", "subject", "The subject (a Patient)", **_PATIENT_REF),
    _p("subject", "reference", "subject", "The subject (a Patient)", **_PATIENT_REF),
    _p("code", "token", "code", "The code of the observation (LOINC, or a local code)"),
    _p(
        "combo-code",
        "token",
        "code | component.code",
        "The code of the observation or of one of its components",
    ),
    _p("category", "token", "category", "laboratory, and the lab chapter (LOINC)"),
    _p(
        "date",
        "date",
        "effectiveDateTime | effectivePeriod",
        "Clinically relevant time of the observation",
        sortable=True,
    ),
    _p("status", "token", "status", "registered | final | cancelled | entered-in-error"),
    _p(
        "has-member",
        "reference",
        "hasMember",
        "The battery's or isolate's member observations",
        targets=("Observation",),
    ),
    _p(
        "value-concept",
        "token",
        "valueCodeableConcept",
        "The value of the observation, if it is a code",
    ),
    # laboratory results by value (`search.quantities`): [prefix]number|system|code
    _p(
        "value-quantity",
        "quantity",
        "valueQuantity",
        "The value of the observation, if it is a quantity (a comparator is the range it "
        "stands for); units by system|code (UCUM) or |code",
    ),
    _p("specimen", "reference", "specimen", "The sample or isolate", targets=("Specimen",)),
    *_DOCUMENT_FACTS,
]

_DIAGNOSTIC_REPORT = [
    _p("patient", "reference", "subject", "The subject (a Patient)", **_PATIENT_REF),
    _p("subject", "reference", "subject", "The subject (a Patient)", **_PATIENT_REF),
    _p("code", "token", "code", "The report code (11502-2 Laboratory report)"),
    _p("category", "token", "category", "Laboratory studies, and the lab chapter (LOINC)"),
    _p(
        "date",
        "date",
        "effectiveDateTime | effectivePeriod",
        "Clinically relevant time of the report",
        sortable=True,
    ),
    _p("status", "token", "status", "final"),
    _p(
        "result",
        "reference",
        "result",
        "The report's observations",
        targets=("Observation",),
    ),
    _p("specimen", "reference", "specimen", "The report's samples", targets=("Specimen",)),
    *_DOCUMENT_FACTS,
]

_CONDITION = [
    _p("patient", "reference", "subject", "Who has the condition", **_PATIENT_REF),
    _p("subject", "reference", "subject", "Who has the condition", **_PATIENT_REF),
    _p("code", "token", "code", "The problem (CIM-10, CISP-2, DRC, Orphanet...)"),
    _p("category", "token", "category", "The kind of problem (SNOMED CT)"),
    _p("clinical-status", "token", "clinicalStatus", "active | resolved | inactive..."),
    _p("onset-date", "date", "onsetDateTime", "When the condition began", sortable=True),
    _p("abatement-date", "date", "abatementDateTime", "When the condition resolved"),
    *_DOCUMENT_FACTS,
]

_ALLERGY_INTOLERANCE = [
    _p("patient", "reference", "patient", "Who the allergy is for", **_PATIENT_REF),
    _p("code", "token", "code", "The substance (CIS, ATC...) or data-absent-reason"),
    _p("category", "token", "category", "food | medication | environment | biologic"),
    _p("type", "token", "type", "allergy | intolerance"),
    _p("clinical-status", "token", "clinicalStatus", "active | inactive | resolved"),
    *_DOCUMENT_FACTS,
]

# -- patient summaries: treatments, procedures, vaccinations ---------------------------------

_MEDICATION_STATEMENT = [
    _p("patient", "reference", "subject", "Who is or was taking the medication", **_PATIENT_REF),
    _p("subject", "reference", "subject", "Who is or was taking the medication", **_PATIENT_REF),
    _p("code", "token", "medicationCodeableConcept", "The medication (CIS, CIP, ATC)"),
    _p("status", "token", "status", "completed (a treatment of a filed summary)"),
    _p(
        "effective",
        "date",
        "effectiveDateTime | effectivePeriod",
        "When the medication was or is taken",
        sortable=True,
    ),
    *_DOCUMENT_FACTS,
]

_PROCEDURE = [
    _p("patient", "reference", "subject", "Who the procedure was performed on", **_PATIENT_REF),
    _p("subject", "reference", "subject", "Who the procedure was performed on", **_PATIENT_REF),
    _p("code", "token", "code", "The procedure (CCAM, or a CI-SIS code)"),
    _p(
        "date",
        "date",
        "performedDateTime | performedPeriod",
        "When it was performed",
        sortable=True,
    ),
    _p("status", "token", "status", "completed | in-progress | stopped | not-done..."),
    *_DOCUMENT_FACTS,
]

_IMMUNIZATION = [
    _p("patient", "reference", "patient", "The patient vaccinated", **_PATIENT_REF),
    _p("vaccine-code", "token", "vaccineCode", "The vaccine (CIS, ATC, CIP)"),
    _p("date", "date", "occurrenceDateTime", "When the vaccine was given", sortable=True),
    _p("status", "token", "status", "completed | not-done"),
    *_DOCUMENT_FACTS,
]

# -- laboratory samples and isolates (CR-BIO) ------------------------------------------------

_SPECIMEN = [
    _p("patient", "reference", "subject", "The patient the sample was taken from", **_PATIENT_REF),
    _p("subject", "reference", "subject", "The patient the sample was taken from", **_PATIENT_REF),
    _p("type", "token", "type", "The kind of sample (jdv-specimen-type-cisis)"),
    _p("identifier", "token", "identifier", "The sample's or isolate's identifier"),
    _p(
        "parent",
        "reference",
        "parent",
        "The sample an isolate was taken from",
        targets=("Specimen",),
    ),
    *_DOCUMENT_FACTS,
]

SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    rtype: {p.name: p for p in params}
    for rtype, params in {
        "DocumentReference": _DOCUMENT_REFERENCE,
        "Patient": _PATIENT,
        "Consent": _CONSENT,
        "AuditEvent": _AUDIT_EVENT,
        "List": _LIST,
        "Communication": _COMMUNICATION,
        "Observation": _OBSERVATION,
        "DiagnosticReport": _DIAGNOSTIC_REPORT,
        "Condition": _CONDITION,
        "AllergyIntolerance": _ALLERGY_INTOLERANCE,
        "MedicationStatement": _MEDICATION_STATEMENT,
        "Procedure": _PROCEDURE,
        "Immunization": _IMMUNIZATION,
        "Specimen": _SPECIMEN,
        "Binary": [],
    }.items()
}

# parameters every type has, handled on columns rather than index tables
COMMON_PARAMS: dict[str, tuple[ParamType, str]] = {
    "_id": ("token", "Logical id of the resource"),
    "_lastUpdated": ("date", "When the resource version last changed"),
}

# the PDSm rule: an ITI-67 search names the patient and the status. Rows: the names one
# of which must be given, how to say so, and the names that waive the row.
# **decision**: `status` is waived when the search names documents by id (`_id`), by
# uniqueId / entryUUID (`identifier`: TD3.1b finds a document whatever its status) or asks
# what changed since a date (`_lastUpdated`: the guide's incremental query has no status);
# every other ITI-67 search must give it, as PDSm requires.
REQUIRED: dict[str, tuple[tuple[frozenset[str], str, frozenset[str]], ...]] = {
    "DocumentReference": (
        (
            frozenset({"patient", "subject", "patient.identifier", "subject.identifier"}),
            "the patient (patient, subject or patient.identifier)",
            frozenset(),
        ),
        (
            frozenset({"status"}),
            "the status (unless _id, identifier or _lastUpdated is given)",
            frozenset({"_id", "identifier", "_lastUpdated"}),
        ),
    ),
}

# A value that implies another condition unless the client names that parameter itself:
# (type, param, value) -> (param, value). **decision**: an archived document is not
# `current` in XDS terms (availabilityStatus Archived), so `status=current` leaves it out;
# `isArchived=true` (or `isArchived=true,false`) with `status=current` finds it.
IMPLIED: dict[tuple[str, str, str], tuple[str, str]] = {
    ("DocumentReference", "status", "current"): ("isArchived", "false"),
}

# A condition a search gets unless the client names the parameter itself, or one of the
# names that waive it: rtype -> (param, query value, waived by).
# **decision**: the data of a replaced (superseded) document leaves the default view of
# searches, as its DocumentReference leaves `status=current`; `document-status=superseded`
# (or `current,superseded`) asks for it, and a search by `_id`, by `document` or through
# `_has` (whose inner search has this default of its own) finds it whatever its document's
# status. Reads by id are not searches: they follow the document.
# Written as `:not=superseded` so data stamped before the fact existed stays in view.
DEFAULTS: dict[str, tuple[tuple[str, str, frozenset[str]], ...]] = {
    rtype: (("document-status:not", "superseded", frozenset({"_id", "document", "_has"})),)
    for rtype, params in SEARCH_PARAMS.items()
    if "document-status" in params
}

# _include / _revinclude this server serves: (source type, param, target type)
INCLUDES: dict[str, tuple[str, str, str]] = {
    "DocumentReference:patient": ("DocumentReference", "patient", "Patient"),
    "DocumentReference:subject": ("DocumentReference", "subject", "Patient"),
    "DocumentReference:subject:Patient": ("DocumentReference", "subject", "Patient"),
    "DiagnosticReport:result": ("DiagnosticReport", "result", "Observation"),
    "Observation:has-member": ("Observation", "has-member", "Observation"),
    "Observation:specimen": ("Observation", "specimen", "Specimen"),
    "DiagnosticReport:specimen": ("DiagnosticReport", "specimen", "Specimen"),
}

# `_has:<source>:<param>:<name>` this server serves: (source type, param, target type).
# The access layer runs the inner search under the reader's rules (`access/reverse_chains`)
REVERSE_CHAINS = frozenset(
    {
        ("DiagnosticReport", "result", "Observation"),
        ("Observation", "has-member", "Observation"),
    }
)


def params_of(rtype: str) -> dict[str, SearchParam]:
    return SEARCH_PARAMS.get(rtype, {})


def sortable(rtype: str) -> tuple[str, ...]:
    return ("_id", "_lastUpdated", *(p.name for p in params_of(rtype).values() if p.sortable))


def _fhirpath(path: str) -> str:
    """Our path notation in FHIRPath: ext(URL) -> extension('URL'), valueX -> value.ofType(x)."""
    path = re.sub(r"ext\(([^)]*)\)", r"extension('\1')", path)
    return re.sub(r"\bvalue([A-Z])(\w*)", lambda m: f"value.ofType({m[1].lower()}{m[2]})", path)


def expression(rtype: str, param: SearchParam) -> str:
    return " | ".join(f"{rtype}.{_fhirpath(path)}" for path in param.paths)


def describe_params(rtype: str) -> list[dict[str, Any]]:
    """CapabilityStatement.rest.resource.searchParam for a type."""
    out = [
        {
            "name": name,
            "definition": f"http://hl7.org/fhir/SearchParameter/Resource-{name.lstrip('_')}",
            "type": type_,
            "documentation": doc,
        }
        for name, (type_, doc) in COMMON_PARAMS.items()
    ]
    out += [
        {
            "name": p.name,
            "definition": f"{CANONICAL_BASE}/{rtype}-{p.name}",
            "type": p.type,
            "documentation": p.description,
        }
        for p in params_of(rtype).values()
    ]
    chains = sorted(f"_has:{s}:{p}" for s, p, t in REVERSE_CHAINS if t == rtype)
    if chains:
        doc = f"Reverse chaining: {', '.join(chains)}, under the reader's rules"
        out.append({"name": "_has", "type": "special", "documentation": doc})
    return out


def search_parameter_resources() -> list[dict[str, Any]]:
    """The SearchParameter resources published in `profiles/` (deterministic order)."""
    out = []
    for rtype, params in SEARCH_PARAMS.items():
        for p in params.values():
            res: dict[str, Any] = {
                "resourceType": "SearchParameter",
                "id": f"{rtype}-{p.name}",
                "url": f"{CANONICAL_BASE}/{rtype}-{p.name}",
                "name": f"{rtype}_{p.name.replace('-', '_')}",
                "status": "active",
                "description": p.description,
                "code": p.name,
                "base": [rtype],
                "type": p.type,
                "expression": expression(rtype, p),
            }
            if p.type == "reference":
                res["target"] = list(p.targets)
                res["modifier"] = ["missing", "identifier"] if p.by_identifier else ["missing"]
                if p.compartment:
                    res["chain"] = ["identifier"]
            elif p.type == "token":
                res["modifier"] = ["missing", "not"]
            elif p.type == "string":
                res["modifier"] = ["missing", "exact", "contains"]
            else:
                res["modifier"] = ["missing"]
            if p.type in ("date", "quantity"):
                res["comparator"] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
            out.append(res)
    return out
