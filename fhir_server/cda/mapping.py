"""CDA -> PDSm comprehensive DocumentReference + FR Core Patient, as plain FHIR R4 dicts.

Pure: bytes in, dicts out; parses the XML once; raises FhirError listing every problem.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from fhir_server.cda.header import II, CdaHeader, read_header
from fhir_server.cda.parse import DEFAULT_MAX_BYTES, parse_cda
from fhir_server.cda.resources import actor_resources, coding, identifier, organization, patient
from fhir_server.cda.timestamps import ts_to_fhir, ts_to_instant
from fhir_server.cda.validate import header_issues
from fhir_server.cda.volet import Volet, detect_volet
from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.ins import INS_KINDS, ins_system
from fhir_server.fhir.mhd import PDSM_DOCREF_PROFILE
from fhir_server.terminology import valuesets
from fhir_server.terminology.valuesets import Concept

Json = dict[str, Any]

CDA_CONTENT_TYPE = "text/xml"


@dataclass(frozen=True)
class CdaDocument:
    """A parsed, validated CDA: header values plus what identifies the bytes."""

    header: CdaHeader
    volet: Volet
    unique_id: str  # XDS uniqueId: root^extension or root
    ins: tuple[str, str]  # (FHIR system, value)
    ins_type: str  # INS-NIR | INS-NIA | INS-NIR-TEST | INS-NIR-DEMO
    sha1_hex: str
    sha1_base64: str
    size: int
    root: etree._Element  # for body extraction, so the XML is parsed only once

    @property
    def set_id(self) -> str | None:
        return self.header.set_id.xds if self.header.set_id else None

    @property
    def replaces(self) -> tuple[str, ...]:
        """uniqueIds of the documents this one replaces (relatedDocument RPLC)."""
        return tuple(
            ii.xds
            for rel in self.header.related_documents
            if rel.type_code == "RPLC"
            for ii in rel.parent_ids
        )


@dataclass(frozen=True)
class CdaMapping:
    document: CdaDocument
    document_reference: Json
    patient: Json

    # shortcuts for the caller (storage keys, Binary, Patient match)
    @property
    def unique_id(self) -> str:
        return self.document.unique_id

    @property
    def ins(self) -> tuple[str, str]:
        return self.document.ins

    @property
    def set_id(self) -> str | None:
        return self.document.set_id

    @property
    def replaces(self) -> tuple[str, ...]:
        return self.document.replaces

    @property
    def sha1_base64(self) -> str:
        return self.document.sha1_base64

    @property
    def size(self) -> int:
        return self.document.size


def read_cda(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CdaDocument:
    """Parse and validate; raise FhirError (400 unreadable, 422 unacceptable) with every issue."""
    root = parse_cda(data, max_bytes=max_bytes)
    header = read_header(root)
    issues = header_issues(header)
    if issues:
        raise FhirError(422, issues)
    assert header.record_target is not None and header.id is not None  # validated above
    ins_ii = next(ii for ii in header.record_target.ids if ii.root in INS_KINDS)
    digest = hashlib.sha1(data)
    return CdaDocument(
        header=header,
        volet=detect_volet(header.template_ids, has_non_xml_body=header.has_non_xml_body),
        unique_id=header.id.xds,
        ins=(ins_system(ins_ii.root), ins_ii.extension or ""),
        ins_type=INS_KINDS[ins_ii.root].type_code,
        sha1_hex=digest.hexdigest(),
        sha1_base64=base64.b64encode(digest.digest()).decode("ascii"),
        size=len(data),
        root=root,
    )


def master_identifier(ii: II) -> Json:
    """masterIdentifier (XDS uniqueId) per IHE ITI Appendix Z identifier mapping."""
    return {"use": "usual", **identifier(ii)}


def confidentiality_label(h: CdaHeader) -> list[Json]:
    """The CDA confidentialityCode as a securityLabel (HL7 v3-Confidentiality)."""
    conf = h.confidentiality
    if conf is None:
        return []
    known = valuesets.confidentiality(conf.system or "", conf.code)
    concept = known or Concept(conf.system or "", conf.code, conf.display)
    return [{"coding": [concept.coding()]}]


def masking_labels(codes: Sequence[str]) -> tuple[list[Json], list[Issue]]:
    """The request's masking codes (TRE_A07 part of J08) as securityLabels; unknown -> issue."""
    labels: list[Json] = []
    issues: list[Issue] = []
    for code in dict.fromkeys(codes):  # keeps order, drops repeats
        concept = valuesets.masking_code(code)
        if concept is not None:
            labels.append({"coding": [concept.coding()]})
            continue
        allowed = ", ".join(valuesets.masking_codes())
        issues.append(
            Issue(
                "code-invalid",
                f"Unknown masking code '{code}': expected one of {allowed}",
                expression=("security-label",),
            )
        )
    return labels, issues


def _practice_setting(h: CdaHeader) -> Json | None:
    """From the serviceEvent performer's organisation; the legal authenticator's as fallback."""
    orgs = [p.organization for e in h.service_events for p in e.performers]
    if h.legal_authenticator is not None:
        orgs.append(h.legal_authenticator.organization)
    for org in orgs:
        if org is not None and org.industry_code is not None:
            code = org.industry_code
            known = valuesets.practice_setting(code.system or "", code.code)
            return {"coding": [known.coding() if known else coding(code)]}
    return None


def _facility_type(h: CdaHeader) -> Json | None:
    code = h.facility_type
    if code is None:
        return None
    known = valuesets.facility_type(code.system or "", code.code)
    return {"coding": [known.coding() if known else coding(code)]}


def _period(h: CdaHeader) -> Json | None:
    for event in h.service_events:
        period = {
            k: v
            for k, v in (("start", ts_to_fhir(event.low)), ("end", ts_to_fhir(event.high)))
            if v
        }
        if period:
            return period
    return None


def _context(h: CdaHeader) -> Json:
    context: Json = {}
    events = [{"coding": [coding(e.code)]} for e in h.service_events if e.code is not None]
    if events:
        context["event"] = events
    if period := _period(h):
        context["period"] = period
    if facility := _facility_type(h):
        context["facilityType"] = facility
    if setting := _practice_setting(h):
        context["practiceSetting"] = setting
    context["sourcePatientInfo"] = {"reference": "#source-patient"}
    return context


def _attachment(doc: CdaDocument, binary_id: str) -> Json:
    h = doc.header
    attachment: Json = {"contentType": CDA_CONTENT_TYPE}
    if h.language:
        attachment["language"] = h.language
    attachment["url"] = f"Binary/{binary_id}"
    attachment["size"] = doc.size
    attachment["hash"] = doc.sha1_base64
    if h.title:
        attachment["title"] = h.title
    if creation := ts_to_fhir(h.effective_time):
        attachment["creation"] = creation
    return attachment


# CDA relatedDocument/@typeCode -> DocumentReference.relatesTo.code (every filing route)
RELATION_CODES = {"RPLC": "replaces", "APND": "appends", "XFRM": "transforms"}


def relates_to(h: CdaHeader) -> list[Json]:
    return [
        {"code": RELATION_CODES[rel.type_code], "target": {"identifier": master_identifier(ii)}}
        for rel in h.related_documents
        if rel.type_code in RELATION_CODES
        for ii in rel.parent_ids
    ]


def build_document_reference(
    doc: CdaDocument,
    *,
    labels: list[Json],
    binary_id: str,
    patient_id: str | None,
    source_patient: Json,
) -> Json:
    h = doc.header
    assert h.id is not None and h.code is not None and h.custodian is not None
    type_concept = valuesets.type_concept(h.code.system or "", h.code.code)
    class_concept = valuesets.class_for_type(h.code.system or "", h.code.code)
    assert type_concept is not None and class_concept is not None

    contained: list[Json] = []
    authors = []
    for i, author in enumerate(h.authors, 1):
        rid, resources = actor_resources(author, f"author-{i}")
        contained.extend(resources)
        authors.append({"reference": f"#{rid}"})
    authenticator = None
    if h.legal_authenticator is not None:
        rid, resources = actor_resources(h.legal_authenticator, "authenticator")
        contained.extend(resources)
        authenticator = {"reference": f"#{rid}"}
    contained.append(organization(h.custodian, "custodian"))
    contained.append(source_patient)

    subject: Json = (
        {"reference": f"Patient/{patient_id}"}
        if patient_id
        else {"identifier": {"system": doc.ins[0], "value": doc.ins[1]}}
    )
    fmt = valuesets.format_for_templates(h.template_ids, h.non_xml_media_type)
    out: Json = {
        "resourceType": "DocumentReference",
        "meta": {"profile": [PDSM_DOCREF_PROFILE]},
        "contained": contained,
        "masterIdentifier": master_identifier(h.id),
        "status": "current",
        "type": {"coding": [type_concept.coding()]},
        "category": [{"coding": [class_concept.coding()]}],
        "subject": subject,
        "date": ts_to_instant(h.effective_time),
        "author": authors,
    }
    if authenticator is not None:
        out["authenticator"] = authenticator
    out["custodian"] = {"reference": "#custodian"}
    if relates := relates_to(h):
        out["relatesTo"] = relates
    if h.title:
        out["description"] = h.title
    out["securityLabel"] = labels
    out["content"] = [{"attachment": _attachment(doc, binary_id), "format": fmt.coding()}]
    out["context"] = _context(h)
    return out


def map_cda(
    data: bytes,
    *,
    security_labels: Sequence[str] = (),
    binary_id: str,
    patient_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CdaMapping:
    """Map a CDA document to a PDSm DocumentReference and an FR Core Patient.

    `security_labels`: masking codes from the request (MASQUE_PS, INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX). `binary_id`: id of the Binary that will hold the bytes.
    `patient_id`: the Patient found or created for the INS (None: subject by identifier).
    Raises FhirError with every problem found (header and request together).
    """
    masks, mask_issues = masking_labels(security_labels)
    try:
        doc = read_cda(data, max_bytes=max_bytes)
    except FhirError as exc:
        if exc.status != 422 or not mask_issues:
            raise
        raise FhirError(422, [*exc.issues, *mask_issues]) from None
    if mask_issues:
        raise FhirError(422, mask_issues)
    record_target = doc.header.record_target
    assert record_target is not None  # read_cda refuses a document without one
    doc_ref = build_document_reference(
        doc,
        labels=[*confidentiality_label(doc.header), *masks],
        binary_id=binary_id,
        patient_id=patient_id,
        source_patient=patient(record_target, "source-patient"),
    )
    return CdaMapping(doc, doc_ref, patient(record_target, patient_id))
