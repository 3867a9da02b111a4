"""Conformance over the ANS CI-SIS example documents (third-party; skipped when absent)."""

import base64
import hashlib
from pathlib import Path

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient
from lxml import etree

from fhir_server.cda.mapping import map_cda

REPO = Path(__file__).resolve().parents[2]
# ../shared beside the checkout; a git worktree under wt/ sits one level deeper
_CANDIDATES = [
    base / "shared/fixtures/cda/ansforge-examples" for base in (REPO.parent, REPO.parent.parent)
]
EXAMPLES = next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])
FILES = sorted(EXAMPLES.glob("*.xml")) if EXAMPLES.is_dir() else []
NS = {"h": "urn:hl7-org:v3"}

# README table of the fixtures folder: type, class (ASS_X04), format (ASS_A11)
EXPECTED = {
    "LDL-SES_2022.01.xml": ("11490-0", "10", "urn:asip:ci-sis:ldl-ses:2017"),
    "VSM_1.4_2022.01.xml": ("SYNTH", "11", "urn:asip:ci-sis:vsm:2012"),
    "BIO-CR-BIO_2024.01_TSH_1.xml": ("11502-2", "10", "urn:ihe:lab:xd-lab:2008"),
    "BIO-CR-BIO_2024.01_CRP_non_LOINC.xml": ("11502-2", "10", "urn:ihe:lab:xd-lab:2008"),
    "BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml": ("11502-2", "10", "urn:ihe:iti:xds-sd:pdf:2008"),
    "BIO-CR-BIO_2024.01_Microbiologie_V1.xml": ("11502-2", "10", "urn:ihe:lab:xd-lab:2008"),
    "BIO-CR-BIO_2023.01_Electrophorese.xml": ("11502-2", "10", "urn:ihe:lab:xd-lab:2008"),
    # the CDA inside its own XSL stylesheet ("autoprésentable")
    "BIO-CR-BIO_2021.01_Auto-Presentable.xml": ("11502-2", "10", "urn:ihe:lab:xd-lab:2008"),
    "BIO-CR-BIO_2024.01_Glycemie_deux_unites_principales_mole_masse.xml": (
        "11502-2",
        "10",
        "urn:ihe:lab:xd-lab:2008",
    ),
    "BIO-TROD_2024.01_Cystite.xml": ("96173-0", "52", "urn:asipSante:modelesHorsProfils:2011"),
    "VAC-NOTE_2023.01.xml": ("87273-9", "52", "urn:asip:ci-sis:vac-note:2021"),
    "IPS-FR_2024.01_DLU.xml": ("74207-2", "11", "urn:ihe:pcc:ips:2020"),
}

pytestmark = pytest.mark.skipif(not FILES, reason=f"ANS example documents not found in {EXAMPLES}")


def _x(doc: etree._Element, path: str) -> str:
    found = doc.xpath(path, namespaces=NS)
    return found if isinstance(found, str) else str(found[0])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_ans_example_maps_field_by_field(path):
    data = path.read_bytes()
    doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    if doc.tag != "{urn:hl7-org:v3}ClinicalDocument":  # autoprésentable: inside a stylesheet
        doc = etree.fromstring(etree.tostring(next(doc.iter("{urn:hl7-org:v3}ClinicalDocument"))))
    m = map_cda(data, binary_id="bin", patient_id="pat", security_labels=["MASQUE_PS"])
    ref = m.document_reference
    type_code, class_code, format_code = EXPECTED[path.name]

    assert (
        ref["type"]["coding"][0]["code"] == type_code == _x(doc, "/h:ClinicalDocument/h:code/@code")
    )
    assert ref["category"][0]["coding"][0]["code"] == class_code
    assert ref["content"][0]["format"]["code"] == format_code
    assert m.unique_id == _x(doc, "/h:ClinicalDocument/h:id/@root")
    assert ref["masterIdentifier"]["value"] == "urn:oid:" + m.unique_id
    assert m.ins == ("urn:oid:1.2.250.1.213.1.4.10", "279035121518989")
    attachment = ref["content"][0]["attachment"]
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert attachment["size"] == len(data) == m.size
    assert attachment["title"] == _x(doc, "normalize-space(/h:ClinicalDocument/h:title)")
    assert attachment["language"] == "fr-FR"
    ts = _x(doc, "/h:ClinicalDocument/h:effectiveTime/@value")  # YYYYMMDDHHMMSS+ZZZZ
    assert ref["date"] == (
        f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}{ts[14:17]}:{ts[17:19]}"
    )
    contained = {r["id"]: r for r in ref["contained"]}
    rpps = _x(
        doc,
        "/h:ClinicalDocument/h:author[1]/h:assignedAuthor/h:id[@root='1.2.250.1.71.4.2.1']/@extension",
    )
    assert contained["author-1-practitioner"]["identifier"][0] == {
        "system": "urn:oid:1.2.250.1.71.4.2.1",
        "value": rpps,
    }
    custodian = _x(
        doc,
        "/h:ClinicalDocument/h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id/@extension",
    )
    assert contained["custodian"]["identifier"][0]["value"] == custodian
    facility = _x(
        doc,
        "/h:ClinicalDocument/h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code/@code",
    )
    assert ref["context"]["facilityType"]["coding"][0]["code"] == facility
    low = _x(doc, "(//h:documentationOf/h:serviceEvent/h:effectiveTime/h:low/@value)[1]")
    assert (
        ref["context"]["period"]["start"]
        .replace("-", "")
        .replace(":", "")
        .replace("T", "")
        .startswith(low[:12])
    )
    industry = _x(
        doc,
        "(//h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity"
        "/h:representedOrganization/h:standardIndustryClassCode/@code)[1]",
    )
    assert ref["context"]["practiceSetting"]["coding"][0]["code"] == industry
    assert {label["coding"][0]["code"] for label in ref["securityLabel"]} == {"N", "MASQUE_PS"}

    p = m.patient
    assert p["name"][0]["family"] == "PAT-TROIS"
    assert p["name"][0]["given"] == ["DOMINIQUE"]
    assert p["name"][0]["extension"][0]["valueString"] == "DOMINIQUE MARIE-LOUISE"
    assert p["gender"] == "female" and p["birthDate"] == "1979-03-28"
    ids = {i["value"] for i in p["identifier"]}
    assert "279035121518989" in ids and ids <= {"279035121518989", "1234567890121"}
    DocumentReference.model_validate(ref)
    Patient.model_validate(p)


def test_every_example_has_an_expectation():
    assert {p.name for p in FILES} <= set(EXPECTED)
