"""Hostile or broken input: refused, with the problems a producer needs to fix it."""

import pytest

from fhir_server.cda.mapping import map_cda
from fhir_server.cda.parse import parse_cda
from fhir_server.errors import FhirError

DOCTYPE_MESSAGE = (
    "CDA document refused: it contains a DOCTYPE declaration; DTDs and entity declarations "
    "are not allowed"
)


def _refusal(data: bytes, **kwargs) -> FhirError:
    with pytest.raises(FhirError) as info:
        map_cda(data, binary_id="b", **kwargs)
    return info.value


def _issues(err: FhirError) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.code, i.diagnostics, i.expression) for i in err.issues]


@pytest.mark.parametrize("name", ["broken-billion-laughs.xml", "broken-xxe-passwd.xml"])
def test_doctype_and_entities_are_refused(fixture_bytes, name):
    err = _refusal(fixture_bytes(name))
    assert err.status == 400
    assert _issues(err) == [("security", DOCTYPE_MESSAGE, ())]
    assert "root:" not in str(err)  # nothing of /etc/passwd leaks into the answer


def test_doctype_without_entities_is_refused_too():
    data = b'<?xml version="1.0"?><!DOCTYPE ClinicalDocument><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
    assert _issues(_refusal(data)) == [("security", DOCTYPE_MESSAGE, ())]


def test_not_well_formed_reports_line_and_column(fixture_bytes):
    err = _refusal(fixture_bytes("broken-not-well-formed.xml"))
    assert err.status == 400
    assert _issues(err) == [
        (
            "structure",
            "CDA document is not well-formed XML: Opening and ending tag mismatch: title line 11 "
            "and titre (line 11, column 45)",
            (),
        )
    ]


def test_not_a_cda(fixture_bytes):
    err = _refusal(fixture_bytes("broken-not-cda.xml"))
    assert err.status == 400
    assert err.issues[0].diagnostics == (
        "Not a CDA document: the root element is {http://hl7.org/fhir}Patient, expected "
        "ClinicalDocument in namespace urn:hl7-org:v3"
    )


def test_size_limit(fixture_bytes):
    data = fixture_bytes("ldl-ses.xml")
    with pytest.raises(FhirError) as info:
        parse_cda(data, max_bytes=1000)
    assert info.value.status == 413
    assert info.value.issues[0].diagnostics == (
        f"CDA document refused: {len(data)} bytes exceeds the limit of 1000 bytes"
    )


@pytest.mark.parametrize("body", [b"", b"  ", b"\r\n\t"])
def test_empty_body(body):
    assert _issues(_refusal(body)) == [("structure", "CDA document refused: the body is empty", ())]


def test_every_missing_element_is_reported_with_its_location(fixture_bytes):
    err = _refusal(
        fixture_bytes("broken-missing-id-author-custodian.xml"), security_labels=["BOGUS"]
    )
    assert err.status == 422
    assert _issues(err) == [
        ("required", "The document has no id (ClinicalDocument/id@root)", ("ClinicalDocument/id",)),
        (
            "required",
            "The document has no author (ClinicalDocument/author/assignedAuthor)",
            ("ClinicalDocument/author",),
        ),
        (
            "required",
            "The document has no custodian (custodian/assignedCustodian/representedCustodianOrganization)",
            ("ClinicalDocument/custodian",),
        ),
        (
            "code-invalid",
            "Unknown masking code 'BOGUS': expected one of INVISIBLE_PATIENT, "
            "INVISIBLE_REPRESENTANTS_LEGAUX, MASQUE_PS",
            ("security-label",),
        ),
    ]


def test_ins_with_wrong_key(fixture_bytes):
    err = _refusal(fixture_bytes("broken-ins-wrong-key.xml"))
    assert err.status == 422
    assert _issues(err) == [
        (
            "value",
            "INS-NIR-TEST '279035121518988' has an invalid NIR key '88' (expected 89)",
            ("ClinicalDocument/recordTarget/patientRole/id",),
        )
    ]


def test_missing_ins(fixture_bytes):
    data = fixture_bytes("ldl-ses.xml").replace(b'root="1.2.250.1.213.1.4.10"', b'root="1.2.3.4"')
    assert _issues(_refusal(data)) == [
        (
            "required",
            "The patient has no INS: a recordTarget/patientRole/id under one of "
            "1.2.250.1.213.1.4.8, 1.2.250.1.213.1.4.9, 1.2.250.1.213.1.4.10, "
            "1.2.250.1.213.1.4.11 is required",
            ("ClinicalDocument/recordTarget/patientRole/id",),
        )
    ]


def test_type_not_in_j07(fixture_bytes):
    err = _refusal(fixture_bytes("broken-type-not-in-j07.xml"))
    assert _issues(err) == [
        (
            "code-invalid",
            "Document type 99999-9 (code system 2.16.840.1.113883.6.1) is not in the CI-SIS "
            "typeCode value set JDV_J07-XdsTypeCode-CISIS; the DMP refuses it",
            ("ClinicalDocument/code",),
        )
    ]


def test_effective_time_without_offset(fixture_bytes):
    data = fixture_bytes("vsm.xml").replace(
        b'<effectiveTime value="20240115103000+0100"/>', b'<effectiveTime value="20240115"/>', 1
    )
    assert _issues(_refusal(data)) == [
        (
            "value",
            "effectiveTime '20240115' must give a date, a time and a UTC offset (YYYYMMDDHHMMSS+ZZZZ)",
            ("ClinicalDocument/effectiveTime",),
        )
    ]


def test_unknown_masking_code_on_a_good_document(fixture_bytes):
    err = _refusal(fixture_bytes("vsm.xml"), security_labels=["MASQUE_PS", "SECRET"])
    assert [i.diagnostics for i in err.issues] == [
        "Unknown masking code 'SECRET': expected one of INVISIBLE_PATIENT, "
        "INVISIBLE_REPRESENTANTS_LEGAUX, MASQUE_PS"
    ]
