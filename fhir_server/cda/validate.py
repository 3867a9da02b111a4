"""What the DMP requires of a CDA header: every problem is collected, with its location.

Locations are XPath-like paths from the document root, e.g.
`ClinicalDocument/recordTarget/patientRole/id`, so a producer can find the faulty element.
"""

from __future__ import annotations

from fhir_server.cda.header import CdaHeader, PatientIdentity
from fhir_server.cda.timestamps import ts_to_instant
from fhir_server.errors import Issue
from fhir_server.fhir.ins import INS_KINDS, nir_problem
from fhir_server.terminology import valuesets

DOC = "ClinicalDocument"
PATIENT_IDS = f"{DOC}/recordTarget/patientRole/id"
CUSTODIAN_ORG = f"{DOC}/custodian/assignedCustodian/representedCustodianOrganization"


def _issue(code: str, message: str, where: str) -> Issue:
    return Issue(code, message, expression=(where,))


def _document_issues(h: CdaHeader) -> list[Issue]:
    issues = []
    if h.id is None:
        issues.append(
            _issue("required", "The document has no id (ClinicalDocument/id@root)", f"{DOC}/id")
        )
    if h.effective_time is None:
        issues.append(
            _issue("required", "The document has no effectiveTime", f"{DOC}/effectiveTime")
        )
    elif ts_to_instant(h.effective_time) is None:
        issues.append(
            _issue(
                "value",
                f"effectiveTime '{h.effective_time}' must give a date, a time and a UTC offset "
                "(YYYYMMDDHHMMSS+ZZZZ)",
                f"{DOC}/effectiveTime",
            )
        )
    return issues


def _type_issues(h: CdaHeader) -> list[Issue]:
    where = f"{DOC}/code"
    if h.code is None:
        return [_issue("required", "The document has no type code (ClinicalDocument/code)", where)]
    system = h.code.system or ""
    if not valuesets.is_known_type(system, h.code.code):
        return [
            _issue(
                "code-invalid",
                f"Document type {h.code.code} (code system {system or 'missing'}) is not in the "
                "CI-SIS typeCode value set JDV_J07-XdsTypeCode-CISIS; the DMP refuses it",
                where,
            )
        ]
    if valuesets.class_for_type(system, h.code.code) is None:
        return [
            _issue(
                "code-invalid",
                f"Document type {h.code.code} has no class in ASS_X04-CorrespondanceType-Classe-"
                "CISIS, so its category cannot be derived",
                where,
            )
        ]
    return []


def ins_issues(patient: PatientIdentity) -> list[Issue]:
    """Problems with the INS among the patientRole ids (none when one valid INS is present)."""
    ins_ids = [ii for ii in patient.ids if ii.root in INS_KINDS]
    if not ins_ids:
        oids = ", ".join(INS_KINDS)
        return [
            _issue(
                "required",
                f"The patient has no INS: a recordTarget/patientRole/id under one of {oids} is "
                "required",
                PATIENT_IDS,
            )
        ]
    issues = []
    for ii in ins_ids:
        kind = INS_KINDS[ii.root].type_code
        value = ii.extension or ""
        if problem := nir_problem(value):
            issues.append(_issue("value", f"{kind} '{value}' {problem}", PATIENT_IDS))
    return issues


def _patient_issues(h: CdaHeader) -> list[Issue]:
    if h.record_target is None:
        return [
            _issue(
                "required", "The document has no recordTarget/patientRole", f"{DOC}/recordTarget"
            )
        ]
    return ins_issues(h.record_target)


def _author_issues(h: CdaHeader) -> list[Issue]:
    if not h.authors:
        return [
            _issue(
                "required",
                "The document has no author (ClinicalDocument/author/assignedAuthor)",
                f"{DOC}/author",
            )
        ]
    return [
        _issue(
            "required",
            "The author has no id (assignedAuthor/id)",
            f"{DOC}/author[{i}]/assignedAuthor/id",
        )
        for i, author in enumerate(h.authors, 1)
        if not author.ids
    ]


def _custodian_issues(h: CdaHeader) -> list[Issue]:
    if h.custodian is None:
        return [
            _issue(
                "required",
                "The document has no custodian (custodian/assignedCustodian/representedCustodianOrganization)",
                f"{DOC}/custodian",
            )
        ]
    if not h.custodian.ids:
        return [_issue("required", "The custodian organisation has no id", f"{CUSTODIAN_ORG}/id")]
    return []


def _related_issues(h: CdaHeader) -> list[Issue]:
    return [
        _issue(
            "required",
            f"relatedDocument typeCode {rel.type_code} names no parentDocument/id",
            f"{DOC}/relatedDocument[{i}]/parentDocument/id",
        )
        for i, rel in enumerate(h.related_documents, 1)
        if rel.type_code == "RPLC" and not rel.parent_ids
    ]


_CHECKS = (
    _document_issues,
    _type_issues,
    _patient_issues,
    _author_issues,
    _custodian_issues,
    _related_issues,
)


def header_issues(h: CdaHeader) -> list[Issue]:
    """Every problem that makes the header unacceptable to the DMP (empty list: acceptable)."""
    return [issue for check in _CHECKS for issue in check(h)]
