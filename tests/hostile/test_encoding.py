"""Invalid UTF-8 and other broken encodings in JSON, XML, PATCH and form bodies: a 400
OperationOutcome (never a UnicodeDecodeError turned 500), nothing stored."""

from __future__ import annotations

import pytest

from tests.helpers import assert_healthy, assert_refused, auth_headers, snapshot

JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
XML = {"content-type": "application/fhir+xml", "accept": "application/fhir+json"}

BAD_BYTES = {
    "lone-continuation": b"\x80",
    "invalid-start": b"\xff\xfe",
    "overlong-slash": b"\xc0\xaf",
    "encoded-surrogate": b"\xed\xa0\x80",
    "truncated-sequence": b"\xe2\x82",
    "latin1-e-acute": b"\xe9",
}


@pytest.mark.parametrize("name", list(BAD_BYTES))
def test_invalid_utf8_in_json(client, name):
    before = snapshot(client)
    body = b'{"resourceType":"Patient","name":[{"family":"X' + BAD_BYTES[name] + b'"}]}'
    r = client.post("/fhir/Patient", content=body, headers={**JSON, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before
    assert_healthy(client)


@pytest.mark.parametrize("name", list(BAD_BYTES))
def test_invalid_utf8_in_xml(client, name):
    before = snapshot(client)
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir">'
        b'<name><family value="X' + BAD_BYTES[name] + b'"/></name></Patient>'
    )
    r = client.post("/fhir/Patient", content=body, headers={**XML, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before


@pytest.mark.parametrize("name", list(BAD_BYTES))
def test_invalid_utf8_in_transaction_and_search_form(client, name):
    before = snapshot(client)
    bundle = (
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST",'
        b'"url":"Patient' + BAD_BYTES[name] + b'"},"resource":{"resourceType":"Patient"}}]}'
    )
    assert_refused(client.post("/fhir", content=bundle, headers={**JSON, **auth_headers()}), 400)
    form = b"identifier=" + BAD_BYTES[name]
    r = client.post(
        "/fhir/Patient/_search",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded", **auth_headers()},
    )
    assert_refused(r, 400)
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "escape",
    [b"\\u0000", b"\\u0007", b"\\u001b", b"\\uffff", b"\\ud800"],
    ids=["nul", "bell", "escape", "non-character", "lone-surrogate"],
)
def test_escaped_control_characters_are_refused(client, escape):
    """Well-formed JSON, but characters a FHIR string (and XML 1.0) cannot carry: storing
    them would make every XML read of the resource fail."""
    before = snapshot(client)
    body = b'{"resourceType":"Patient","name":[{"family":"A' + escape + b'B"}]}'
    r = client.post("/fhir/Patient", content=body, headers={**JSON, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before


def test_utf8_bom_and_utf16_json(client):
    before = snapshot(client)
    body = '{"resourceType":"Patient"}'
    for raw in (b"\xef\xbb\xbf" + body.encode(), body.encode("utf-16")):
        r = client.post("/fhir/Patient", content=raw, headers={**JSON, **auth_headers()})
        assert_refused(r, 400)
    assert snapshot(client) == before


def test_non_ascii_that_is_valid_is_kept(client):
    body = '{"resourceType":"Patient","name":[{"family":"Lœtitia-Ñúñez 王 🩺"}]}'.encode()
    r = client.post("/fhir/Patient", content=body, headers={**JSON, **auth_headers()})
    assert r.status_code == 201, r.text
    read = client.get(f"/fhir/Patient/{r.json()['id']}?_format=xml", headers=auth_headers())
    assert read.status_code == 200 and "Lœtitia-Ñúñez 王 🩺" in read.text
