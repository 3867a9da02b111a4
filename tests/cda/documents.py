"""The CDA documents the tests file, and the field-by-field check of their mapping.

Two sets: the project's own synthetic documents in tests/fixtures/cda (always there), and the
ANS CI-SIS example documents, a third-party extra lane read from ../shared (or from
$ANS_EXAMPLES_DIR) when present. Each document is checked against what an independent
reading of its XML (XPath) says the DocumentReference and the Patient must hold.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient
from lxml import etree

from fhir_server.cda.mapping import map_cda
from fhir_server.cda.volet import Volet

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "cda"
NS = {"h": "urn:hl7-org:v3"}
INS_TEST_OID = "1.2.250.1.213.1.4.10"


@dataclass(frozen=True)
class Expected:
    """What a document maps to: type (J07), class (ASS_X04), format (ASS_A11 / A12)."""

    type_code: str
    class_code: str
    format_code: str


@dataclass(frozen=True)
class ExpectedPatient:
    """The Patient of a document: birth family, first birth given name, all birth given
    names (FR Core extension), gender, birth date."""

    family: str
    first_given: str
    given_names: str
    gender: str
    birth_date: str


# -- the project's own documents (synthetic, written here) -------------------------------------

CAMILLE = ExpectedPatient("TESTNAISSANCE", "CAMILLE", "CAMILLE JEANNE", "female", "1979-03-28")
THOMAS = ExpectedPatient("ESSAIMAN", "THOMAS", "THOMAS PAUL", "male", "1985-07-14")
MARGUERITE = ExpectedPatient(
    "TESTANCIENNE", "MARGUERITE", "MARGUERITE ODETTE", "female", "1938-02-11"
)

LDL_SES = Expected("11490-0", "10", "urn:asip:ci-sis:ldl-ses:2017")
VSM = Expected("SYNTH", "11", "urn:asip:ci-sis:vsm:2012")
CR_BIO = Expected("11502-2", "10", "urn:ihe:lab:xd-lab:2008")
CR_BIO_PDF = Expected("11502-2", "10", "urn:ihe:iti:xds-sd:pdf:2008")
TROD = Expected("96173-0", "52", "urn:asipSante:modelesHorsProfils:2011")
VAC_NOTE = Expected("87273-9", "52", "urn:asip:ci-sis:vac-note:2021")
IPS_FR_DLU = Expected("74207-2", "11", "urn:ihe:pcc:ips:2020")


@dataclass(frozen=True)
class ProjectDocument:
    expected: Expected
    volet: Volet
    patient: ExpectedPatient


PROJECT: dict[str, ProjectDocument] = {
    "ldl-ses.xml": ProjectDocument(LDL_SES, Volet.LDL_SES, CAMILLE),
    "ldl-ses-rplc.xml": ProjectDocument(LDL_SES, Volet.LDL_SES, CAMILLE),
    "vsm.xml": ProjectDocument(VSM, Volet.VSM, CAMILLE),
    "cr-bio-n3.xml": ProjectDocument(CR_BIO, Volet.CR_BIO, CAMILLE),
    "cr-bio-n1-pdf.xml": ProjectDocument(CR_BIO_PDF, Volet.LEVEL1, CAMILLE),
    # the CDA inside its own XSL stylesheet ("autoprésentable")
    "cr-bio-autopresentable.xml": ProjectDocument(CR_BIO, Volet.CR_BIO, CAMILLE),
    "cr-bio-microbiologie.xml": ProjectDocument(CR_BIO, Volet.CR_BIO, CAMILLE),
    "cr-bio-electrophorese.xml": ProjectDocument(CR_BIO, Volet.CR_BIO, CAMILLE),
    # a volet whose template only the shared CI-SIS header stands for
    "trod-angine.xml": ProjectDocument(TROD, Volet.CISIS_HEADER, THOMAS),
    "vac-note.xml": ProjectDocument(VAC_NOTE, Volet.VAC_NOTE, THOMAS),
    "ips-fr-dlu.xml": ProjectDocument(IPS_FR_DLU, Volet.IPS_FR, MARGUERITE),
    "ips-fr-dlu-rplc.xml": ProjectDocument(IPS_FR_DLU, Volet.IPS_FR, MARGUERITE),
    # bodies for the structured-content tests (tests/cda/test_structured_content.py)
    "cr-bio-body.xml": ProjectDocument(CR_BIO, Volet.CR_BIO, CAMILLE),
    "vsm-body.xml": ProjectDocument(VSM, Volet.VSM, CAMILLE),
}

# -- the ANS CI-SIS examples (third-party, read-only, not in the repository) -------------------

# ../shared beside the checkout; a git worktree under wt/ sits one level deeper
_CANDIDATES = [
    base / "shared/fixtures/cda/ansforge-examples" for base in (REPO.parent, REPO.parent.parent)
]
_CHOSEN = os.environ.get("ANS_EXAMPLES_DIR")
ANS_EXAMPLES = (
    Path(_CHOSEN) if _CHOSEN else next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])
)
ANS_FILES = sorted(ANS_EXAMPLES.glob("*.xml")) if ANS_EXAMPLES.is_dir() else []
ANS_ABSENT = f"ANS example documents not found in {ANS_EXAMPLES}"

# README table of the examples folder: type, class (ASS_X04), format (ASS_A11)
ANS_EXPECTED = {
    "LDL-SES_2022.01.xml": LDL_SES,
    "VSM_1.4_2022.01.xml": VSM,
    "BIO-CR-BIO_2024.01_TSH_1.xml": CR_BIO,
    "BIO-CR-BIO_2024.01_CRP_non_LOINC.xml": CR_BIO,
    "BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml": CR_BIO_PDF,
    "BIO-CR-BIO_2024.01_Microbiologie_V1.xml": CR_BIO,
    "BIO-CR-BIO_2023.01_Electrophorese.xml": CR_BIO,
    "BIO-CR-BIO_2021.01_Auto-Presentable.xml": CR_BIO,
    "BIO-CR-BIO_2024.01_Glycemie_deux_unites_principales_mole_masse.xml": CR_BIO,
    "BIO-TROD_2024.01_Cystite.xml": TROD,
    "VAC-NOTE_2023.01.xml": VAC_NOTE,
    "IPS-FR_2024.01_DLU.xml": IPS_FR_DLU,
}
# every example concerns the same fictitious test patient (README of the examples folder)
ANS_PATIENT = ExpectedPatient(
    "PAT-TROIS", "DOMINIQUE", "DOMINIQUE MARIE-LOUISE", "female", "1979-03-28"
)


# -- reading a document independently of the code under test ----------------------------------


def clinical_document(data: bytes) -> etree._Element:
    """The ClinicalDocument element, also when it travels inside its own stylesheet."""
    doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    if doc.tag != "{urn:hl7-org:v3}ClinicalDocument":  # autoprésentable: inside a stylesheet
        doc = etree.fromstring(etree.tostring(next(doc.iter("{urn:hl7-org:v3}ClinicalDocument"))))
    return doc


def xpath(doc: etree._Element, path: str) -> str:
    found = doc.xpath(path, namespaces=NS)
    return found if isinstance(found, str) else str(found[0])


def xpaths(doc: etree._Element, path: str) -> list[str]:
    return [str(v) for v in doc.xpath(path, namespaces=NS)]


def ins_of(data: bytes) -> tuple[str, str]:
    """The (FHIR system, value) of the document's INS, read from its recordTarget."""
    doc = clinical_document(data)
    value = xpath(
        doc,
        f"/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[@root='{INS_TEST_OID}']/@extension",
    )
    return f"urn:oid:{INS_TEST_OID}", value


def _ii_identifier(root: str, extension: str | None) -> dict[str, str]:
    """IHE ITI Appendix Z: root + extension -> urn:oid:root | extension; a root alone is the
    identifier itself, urn:oid: for an OID, urn:uuid: (lower case) for a UUID."""
    if extension:
        return {"use": "usual", "system": f"urn:oid:{root}", "value": extension}
    uri = f"urn:uuid:{root.lower()}" if "-" in root else f"urn:oid:{root}"
    return {"use": "usual", "system": "urn:ietf:rfc:3986", "value": uri}


def _fhir_instant(ts: str) -> str:
    """YYYYMMDDHHMMSS+ZZZZ -> YYYY-MM-DDTHH:MM:SS+ZZ:ZZ"""
    return (
        f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}{ts[14:17]}:{ts[17:19]}"
    )


def check_maps_field_by_field(data: bytes, expected: Expected, patient: ExpectedPatient) -> None:
    """Map `data` as the server does on filing and check every header-derived field."""
    doc = clinical_document(data)
    m = map_cda(data, binary_id="bin", patient_id="pat", security_labels=["MASQUE_PS"])
    ref: dict[str, Any] = m.document_reference

    assert (
        ref["type"]["coding"][0]["code"]
        == expected.type_code
        == xpath(doc, "/h:ClinicalDocument/h:code/@code")
    )
    assert ref["category"][0]["coding"][0]["code"] == expected.class_code
    assert ref["content"][0]["format"]["code"] == expected.format_code

    root = xpath(doc, "/h:ClinicalDocument/h:id/@root")
    extension = (xpaths(doc, "/h:ClinicalDocument/h:id/@extension") or [None])[0]
    assert m.unique_id == (f"{root}^{extension}" if extension else root)
    assert ref["masterIdentifier"] == _ii_identifier(root, extension)
    relations = {"RPLC": "replaces", "APND": "appends", "XFRM": "transforms"}
    parents = doc.xpath(
        "/h:ClinicalDocument/h:relatedDocument/h:parentDocument/h:id", namespaces=NS
    )
    assert [(r["code"], r["target"]["identifier"]) for r in ref.get("relatesTo", [])] == [
        (
            relations[ii.getparent().getparent().get("typeCode")],
            _ii_identifier(ii.get("root"), ii.get("extension")),
        )
        for ii in parents
    ]
    assert m.ins == ins_of(data)

    attachment = ref["content"][0]["attachment"]
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert attachment["size"] == len(data) == m.size
    assert attachment["title"] == xpath(doc, "normalize-space(/h:ClinicalDocument/h:title)")
    assert attachment["language"] == xpath(doc, "/h:ClinicalDocument/h:languageCode/@code")
    assert ref["date"] == _fhir_instant(xpath(doc, "/h:ClinicalDocument/h:effectiveTime/@value"))

    contained = {r["id"]: r for r in ref["contained"]}
    rpps = xpath(
        doc,
        "/h:ClinicalDocument/h:author[1]/h:assignedAuthor/h:id[@root='1.2.250.1.71.4.2.1']/@extension",
    )
    assert contained["author-1-practitioner"]["identifier"][0] == {
        "system": "urn:oid:1.2.250.1.71.4.2.1",
        "value": rpps,
    }
    custodian = xpath(
        doc,
        "/h:ClinicalDocument/h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id/@extension",
    )
    assert contained["custodian"]["identifier"][0]["value"] == custodian

    context = ref["context"]
    facility = xpath(
        doc,
        "/h:ClinicalDocument/h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code/@code",
    )
    assert context["facilityType"]["coding"][0]["code"] == facility
    events = xpaths(doc, "/h:ClinicalDocument/h:documentationOf/h:serviceEvent/h:code/@code")
    assert [e["coding"][0]["code"] for e in context.get("event", [])] == events
    low = xpath(doc, "(//h:documentationOf/h:serviceEvent/h:effectiveTime/h:low/@value)[1]")
    assert context["period"]["start"] == _fhir_instant(low)
    highs = xpaths(doc, "(//h:documentationOf/h:serviceEvent/h:effectiveTime)[1]/h:high/@value")
    assert context["period"].get("end") == (_fhir_instant(highs[0]) if highs else None)
    industry = xpath(
        doc,
        "(//h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity"
        "/h:representedOrganization/h:standardIndustryClassCode/@code)[1]",
    )
    assert context["practiceSetting"]["coding"][0]["code"] == industry
    assert {label["coding"][0]["code"] for label in ref["securityLabel"]} == {"N", "MASQUE_PS"}

    p = m.patient
    assert p["name"][0]["family"] == patient.family
    assert p["name"][0]["given"] == [patient.first_given]
    assert p["name"][0]["extension"][0]["valueString"] == patient.given_names
    assert p["gender"] == patient.gender and p["birthDate"] == patient.birth_date
    ids = {i["value"] for i in p["identifier"]}
    assert ids == set(
        xpaths(doc, "/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id/@extension")
    )
    assert m.ins[1] in ids
    DocumentReference.model_validate(ref)
    Patient.model_validate(p)


# -- later CR-BIO reports of the same patient -------------------------------------------------


def cr_bio_body_version(tsh: str, *, replaces: bool = True, day: str = "20240114") -> bytes:
    """cr-bio-body.xml as a later report: a new uniqueId (and version), `tsh` as the TSH
    value (unit m[IU]/L), the results dated `day`; with `replaces`, a correction
    (RPLC) of the first report, else a report of its own."""
    data = (FIXTURES / "cr-bio-body.xml").read_text(encoding="utf-8")
    parent = '<id root="1.2.250.1.999.4.1" extension="BIO-BODY-0001"/>'
    related = (
        f'<relatedDocument typeCode="RPLC"><parentDocument>{parent}'
        '<setId root="1.2.250.1.999.4.1.1"/></parentDocument></relatedDocument>'
    )
    suffix = "0002" if replaces else day
    replaced = {
        parent: f'<id root="1.2.250.1.999.4.1" extension="BIO-BODY-{suffix}"/>',
        'value="1.950" unit="m[IU]/L"': f'value="{tsh}" unit="m[IU]/L"',
    }
    if replaces:
        replaced['<versionNumber value="1"/>'] = '<versionNumber value="2"/>'
        replaced["  <documentationOf>"] = f"  {related}\n  <documentationOf>"
    else:
        replaced['<setId root="1.2.250.1.999.4.1.1"/>'] = f'<setId root="1.2.250.1.999.4.{day}"/>'
    for old, new in replaced.items():
        assert data.count(old) == 1, old
        data = data.replace(old, new)
    return data.replace('<effectiveTime value="20240114', f'<effectiveTime value="{day}').encode()
