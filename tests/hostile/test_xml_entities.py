"""XML external entities and entity expansion ("billion laughs"), in FHIR XML bodies and in
CDA documents: refused before anything expands or fetches, nothing stored, server healthy."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server.cda.mapping import read_cda
from fhir_server.cda.parse import parse_cda
from fhir_server.errors import FhirError
from tests.helpers import assert_healthy, assert_refused, auth_headers, snapshot

CDA_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cda"
XML = {"content-type": "application/fhir+xml", "accept": "application/fhir+json"}

LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)

# (name, prologue, text placed in an element value) -- each one is an attack on its own
ATTACKS = [
    ("xxe-file", '<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
    ("xxe-http", '<!DOCTYPE p [<!ENTITY x SYSTEM "http://127.0.0.1:9/secret">]>', "&x;"),
    ("billion-laughs", LAUGHS, "&lol9;"),
    (
        "parameter-entity",
        '<!DOCTYPE p [<!ENTITY % d SYSTEM "http://127.0.0.1:9/evil.dtd"> %d;]>',
        "x",
    ),
    ("external-dtd", '<!DOCTYPE p SYSTEM "http://127.0.0.1:9/evil.dtd">', "x"),
    ("quadratic-blowup", f'<!DOCTYPE p [<!ENTITY a "{"A" * 50_000}">]>', "&a;" * 200),
]


def _fhir_patient(prologue: str, text: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prologue}'
        f'<Patient xmlns="http://hl7.org/fhir"><name><family value="{text}"/></name></Patient>'
    )


def _fhir_bundle(prologue: str, text: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prologue}'
        '<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/><entry><resource>'
        f'<Patient><name><family value="{text}"/></name></Patient></resource>'
        '<request><method value="POST"/><url value="Patient"/></request></entry></Bundle>'
    )


def _cda(prologue: str, text: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prologue}'
        f'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>{text}</title></ClinicalDocument>'
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize(("name", "prologue", "text"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_fhir_xml_resource_refused(client, name, prologue, text, encoding):
    before = snapshot(client)
    body = _fhir_patient(prologue, text)
    if encoding != "utf-8":
        body = body.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"')
    r = client.post(
        "/fhir/Patient", content=body.encode(encoding), headers={**XML, **auth_headers()}
    )
    outcome = assert_refused(r, 400)
    assert "root:" not in r.text and "lol" * 20 not in r.text  # nothing expanded or leaked
    if encoding == "utf-8":
        assert outcome["issue"][0]["code"] == "security"
    assert snapshot(client) == before
    assert_healthy(client)


@pytest.mark.parametrize(("name", "prologue", "text"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_fhir_xml_transaction_refused(client, name, prologue, text):
    before = snapshot(client)
    r = client.post(
        "/fhir", content=_fhir_bundle(prologue, text).encode(), headers={**XML, **auth_headers()}
    )
    assert_refused(r, 400)
    assert snapshot(client) == before
    assert_healthy(client)


def test_xinclude_is_not_processed(client):
    body = (
        '<Patient xmlns="http://hl7.org/fhir" xmlns:xi="http://www.w3.org/2001/XInclude">'
        '<xi:include href="file:///etc/passwd" parse="text"/></Patient>'
    )
    before = snapshot(client)
    r = client.post("/fhir/Patient", content=body.encode(), headers={**XML, **auth_headers()})
    assert_refused(r, 400)
    assert "root:" not in r.text
    assert snapshot(client) == before


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize(("name", "prologue", "text"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_cda_parser_refuses(name, prologue, text, encoding):
    body = _cda(prologue, text)
    if encoding != "utf-8":
        body = body.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"')
    with pytest.raises(FhirError) as info:
        parse_cda(body.encode(encoding))
    assert info.value.status == 400
    assert info.value.issues and "root:" not in str(info.value)


@pytest.mark.parametrize("fixture", ["broken-xxe-passwd.xml", "broken-billion-laughs.xml"])
def test_cda_fixtures_refused_by_the_header_reader(fixture):
    with pytest.raises(FhirError) as info:
        read_cda((CDA_FIXTURES / fixture).read_bytes())
    assert info.value.status == 400
    assert info.value.issues[0].code == "security"


@pytest.mark.parametrize("fixture", ["broken-xxe-passwd.xml", "broken-billion-laughs.xml"])
def test_cda_filing_over_http_refused(client, fixture):
    """`$import-cda` refuses hostile XML and stores nothing."""
    before = snapshot(client)
    r = client.post(
        "/fhir/DocumentReference/$import-cda",
        content=(CDA_FIXTURES / fixture).read_bytes(),
        headers={"content-type": "application/hl7-cda+xml", **auth_headers()},
    )
    assert_refused(r, 400)
    assert "root:" not in r.text
    assert snapshot(client) == before
    assert_healthy(client)
