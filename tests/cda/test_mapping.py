"""Mapped DocumentReference / Patient for the project's own fixtures."""

import base64
import hashlib

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient
from lxml import etree

from fhir_server.cda.mapping import map_cda
from tests.cda.documents import PROJECT

A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
A07 = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"

CLASS_DISPLAYS = {"10": "Compte rendu", "11": "Synthèse", "52": "Certificat, déclaration"}


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_type_category_format_and_valid_fhir(fixture_bytes, name):
    document = PROJECT[name]
    expected = document.expected
    data = fixture_bytes(name)
    m = map_cda(data, binary_id="bin-1", patient_id="pat-1")
    ref = m.document_reference
    assert m.document.volet is document.volet
    assert ref["type"]["coding"][0]["code"] == expected.type_code
    assert ref["category"][0]["coding"][0] == {
        "system": A03,
        "code": expected.class_code,
        "display": CLASS_DISPLAYS[expected.class_code],
    }
    assert ref["content"][0]["format"]["code"] == expected.format_code
    attachment = ref["content"][0]["attachment"]
    assert attachment["size"] == len(data)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert attachment["url"] == "Binary/bin-1"
    assert ref["subject"] == {"reference": "Patient/pat-1"}
    DocumentReference.model_validate(ref)
    Patient.model_validate(m.patient)


def test_ldl_ses_header_fields(fixture_bytes):
    m = map_cda(fixture_bytes("ldl-ses.xml"), binary_id="b", patient_id=None)
    ref = m.document_reference
    assert m.unique_id == "1.2.250.1.999.2.1^LDL-0001"
    assert ref["masterIdentifier"] == {
        "use": "usual",
        "system": "urn:oid:1.2.250.1.999.2.1",
        "value": "LDL-0001",
    }
    assert ref["status"] == "current"
    assert ref["date"] == "2024-01-15T10:30:00+01:00"
    assert ref["subject"] == {
        "identifier": {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "279035121518989"}
    }
    contained = {r["id"]: r for r in ref["contained"]}
    assert ref["author"] == [{"reference": "#author-1-role"}]
    assert contained["author-1-practitioner"]["identifier"] == [
        {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000000001"}
    ]
    assert contained["author-1-role"]["organization"] == {"reference": "#author-1-organization"}
    assert contained["custodian"]["identifier"] == [
        {"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1990000018"}
    ]
    assert ref["authenticator"] == {"reference": "#authenticator-role"}
    ctx = ref["context"]
    assert ctx["period"] == {
        "start": "2024-01-10T08:00:00+01:00",
        "end": "2024-01-15T10:00:00+01:00",
    }
    assert ctx["facilityType"]["coding"][0]["code"] == "SA01"
    assert ctx["practiceSetting"]["coding"][0] == {
        "system": "https://mos.esante.gouv.fr/NOS/TRE_A01-CadreExercice/FHIR/TRE-A01-CadreExercice",
        "code": "ETABLISSEMENT",
        "display": "Etablissement de santé",
    }
    assert ctx["event"][0]["coding"][0]["code"] == "IMP"
    assert ctx["sourcePatientInfo"] == {"reference": "#source-patient"}
    assert contained["source-patient"]["resourceType"] == "Patient"
    assert ref["content"][0]["attachment"]["language"] == "fr-FR"
    assert ref["content"][0]["attachment"]["creation"] == "2024-01-15T10:30:00+01:00"
    assert "relatesTo" not in ref


def test_security_labels_combine_confidentiality_and_masking(fixture_bytes):
    m = map_cda(
        fixture_bytes("vsm.xml"),
        binary_id="b",
        security_labels=["MASQUE_PS", "INVISIBLE_PATIENT", "MASQUE_PS"],
    )
    assert [label["coding"][0] for label in m.document_reference["securityLabel"]] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
            "code": "N",
            "display": "Normal",
        },
        {"system": A07, "code": "MASQUE_PS", "display": "Masqué aux professionnels de santé"},
        {"system": A07, "code": "INVISIBLE_PATIENT", "display": "Non visible par le patient"},
    ]


def test_id_without_extension_is_an_oid_uri(fixture_bytes):
    m = map_cda(fixture_bytes("vsm.xml"), binary_id="b")
    assert m.unique_id == "1.2.250.1.999.3.1"
    assert m.document_reference["masterIdentifier"] == {
        "use": "usual",
        "system": "urn:ietf:rfc:3986",
        "value": "urn:oid:1.2.250.1.999.3.1",
    }


def test_replacement_points_to_the_replaced_document(fixture_bytes):
    m = map_cda(fixture_bytes("ldl-ses-rplc.xml"), binary_id="b")
    assert m.replaces == ("1.2.250.1.999.2.1^LDL-0001",)
    assert m.set_id == "1.2.250.1.999.2.1.0"
    assert m.document_reference["relatesTo"] == [
        {
            "code": "replaces",
            "target": {
                "identifier": {
                    "use": "usual",
                    "system": "urn:oid:1.2.250.1.999.2.1",
                    "value": "LDL-0001",
                }
            },
        }
    ]


def test_patient_follows_fr_core_ins(fixture_bytes):
    m = map_cda(fixture_bytes("cr-bio-n3.xml"), binary_id="b", patient_id="pat-9")
    p = m.patient
    assert p["id"] == "pat-9"
    assert m.ins == ("urn:oid:1.2.250.1.213.1.4.10", "279035121518989")
    assert p["identifier"][0] == {
        "use": "official",
        "type": {
            "coding": [
                {
                    "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                    "code": "INS-NIR-TEST",
                }
            ]
        },
        "system": "urn:oid:1.2.250.1.213.1.4.10",
        "value": "279035121518989",
    }
    assert p["identifier"][1]["value"] == "IPP000123"
    assert p["identifier"][1]["type"]["coding"][0]["code"] == "PI"
    official, usual = p["name"]
    assert official["family"] == "TESTNAISSANCE" and official["given"] == ["CAMILLE"]
    assert official["extension"][0]["valueString"] == "CAMILLE JEANNE"
    assert usual == {"use": "usual", "family": "TESTUSAGE", "given": ["CAM"]}
    assert p["gender"] == "female"
    assert p["birthDate"] == "1979-03-28"
    insee = p["extension"][0]["valueAddress"]["extension"][0]["valueCoding"]["code"]
    assert insee == "51215"


def test_level1_pdf_document(fixture_bytes):
    m = map_cda(fixture_bytes("cr-bio-n1-pdf.xml"), binary_id="b")
    assert m.document.header.non_xml_media_type == "application/pdf"
    # the filed object is the CDA itself, whatever it wraps
    assert m.document_reference["content"][0]["attachment"]["contentType"] == "text/xml"


def _in_stylesheet(cda: bytes, copies: int = 1) -> bytes:
    """A CI-SIS "autoprésentable" document: the CDA inside the XSL stylesheet that renders it."""
    body = cda.split(b"?>", 1)[1] if cda.startswith(b"<?xml") else cda
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/xsl" href="#"?>\n'
        b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        b'<xsl:template match="/">' + body * copies + b"</xsl:template></xsl:stylesheet>"
    )


def test_cda_inside_its_own_stylesheet_maps_like_the_bare_cda(fixture_bytes):
    bare = fixture_bytes("cr-bio-n3.xml")
    wrapped = _in_stylesheet(bare)
    plain = map_cda(bare, binary_id="b", patient_id="p").document_reference
    ref = map_cda(wrapped, binary_id="b", patient_id="p").document_reference
    # same metadata; the hash and size are those of the bytes filed (the whole stylesheet)
    assert ref["type"] == plain["type"] and ref["masterIdentifier"] == plain["masterIdentifier"]
    assert ref["content"][0]["attachment"]["size"] == len(wrapped)


def test_stylesheet_holding_two_documents_is_not_a_cda(fixture_bytes):
    from fhir_server.errors import FhirError

    with pytest.raises(FhirError) as err:
        map_cda(_in_stylesheet(fixture_bytes("cr-bio-n3.xml"), 2), binary_id="b", patient_id="p")
    assert err.value.status == 400 and "Not a CDA document" in str(err.value)


def test_autopresentable_document_displays_itself(fixture_bytes):
    """What a browser shows when it opens the file: the document is its own stylesheet."""
    tree = etree.fromstring(fixture_bytes("cr-bio-autopresentable.xml")).getroottree()
    page = str(etree.XSLT(tree)(tree))
    assert "<h1>Compte rendu de biologie médicale (glycémie, sérologie)</h1>" in page
    assert "TESTNAISSANCE CAMILLE JEANNE, née le 28/03/1979" in page
    assert "<td>5,2 mmol/L</td>" in page and "<td>0,94 g/L</td>" in page
    assert "ClinicalDocument" not in page and "h:" not in page


def test_autopresentable_document_maps_like_the_cda_it_carries(fixture_bytes):
    data = fixture_bytes("cr-bio-autopresentable.xml")
    carried = next(etree.fromstring(data).iter("{urn:hl7-org:v3}ClinicalDocument"))
    bare = etree.tostring(carried, xml_declaration=True, encoding="UTF-8")
    wrapped = map_cda(data, binary_id="b", patient_id="p")
    plain = map_cda(bare, binary_id="b", patient_id="p")
    assert wrapped.patient == plain.patient
    ref, bare_ref = wrapped.document_reference, plain.document_reference
    # hash and size are those of the bytes filed, the whole stylesheet; all else is the CDA's
    attachment, bare_attachment = (
        ref["content"][0]["attachment"],
        bare_ref["content"][0]["attachment"],
    )
    assert (attachment["size"], bare_attachment["size"]) == (len(data), len(bare))
    assert attachment["hash"] != bare_attachment["hash"]
    for a in (attachment, bare_attachment):
        del a["size"], a["hash"]
    assert ref == bare_ref
