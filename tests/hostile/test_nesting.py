"""Deeply nested bodies: JSON arrays/objects 100 000 levels deep, structurally valid FHIR
nested a few hundred levels (past the parser's limit but within the stack), and deep XML.
Each is a 400 with an OperationOutcome, never a stack overflow turned 500."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fhir_server.config import Settings
from tests.conftest import nir_with_key, patient
from tests.helpers import assert_healthy, assert_refused, auth_headers, snapshot

JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
XML = {"content-type": "application/fhir+xml", "accept": "application/fhir+json"}
PATCH = {"content-type": "application/json-patch+json"}
DEPTH = 100_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # room for 100 000 levels, so the depth check (not the size limit) is what refuses
    return Settings(
        data_dir=tmp_path,
        public_base_url="http://testserver/fhir",
        max_body_bytes=4 << 20,
        auth="none",
    )


def _extension_chain(levels: int) -> bytes:
    """A Patient whose extension nests `levels` times: valid FHIR at every level."""
    leaf = b'{"url":"http://x","valueString":"v"}'
    chain = b'{"url":"http://x","extension":[' * levels + leaf + b"]}" * levels
    body = orjson.dumps(patient(nir_with_key("1790351215100"), extension=["CHAIN"]))
    return body.replace(b'"CHAIN"', chain)


BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "resource-then-arrays": b'{"resourceType":"Patient","name":'
    + b"[" * DEPTH
    + b"]" * DEPTH
    + b"}",
    "extension-chain-300": _extension_chain(300),
    "extension-chain-60": _extension_chain(60),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_deep_json_create(client, name):
    before = snapshot(client)
    r = client.post("/fhir/Patient", content=BODIES[name], headers={**JSON, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before
    assert_healthy(client)


@pytest.mark.parametrize("name", list(BODIES))
def test_deep_json_in_a_transaction(client, name):
    before = snapshot(client)
    inner = BODIES[name]
    bundle = (
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1",'
        b'"request":{"method":"POST","url":"Patient"},"resource":' + inner + b"}]}"
    )
    r = client.post("/fhir", content=bundle, headers={**JSON, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before
    assert_healthy(client)


def test_deep_json_patch_and_update(client, seeded):
    before = snapshot(client)
    did = seeded["DocumentReference"][0]
    r = client.patch(
        f"/fhir/DocumentReference/{did}",
        content=BODIES["arrays"],
        headers={**PATCH, **auth_headers()},
    )
    assert_refused(r, 400)
    ops = b'[{"op":"add","path":"/description","value":' + b"[" * 500 + b"]" * 500 + b"}]"
    r = client.patch(
        f"/fhir/DocumentReference/{did}", content=ops, headers={**PATCH, **auth_headers()}
    )
    assert_refused(r, 400)
    pid = seeded["Patient"][0]
    body = BODIES["extension-chain-300"].replace(
        b'"resourceType":"Patient"', f'"resourceType":"Patient","id":"{pid}"'.encode()
    )
    r = client.put(f"/fhir/Patient/{pid}", content=body, headers={**JSON, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before
    assert_healthy(client)


@pytest.mark.parametrize("levels", [DEPTH, 300, 100])
def test_deep_xml(client, levels):
    before = snapshot(client)
    body = (
        b'<Patient xmlns="http://hl7.org/fhir">'
        + b'<extension url="http://x">' * levels
        + b'<valueString value="v"/>'
        + b"</extension>" * levels
        + b"</Patient>"
    )
    r = client.post("/fhir/Patient", content=body, headers={**XML, **auth_headers()})
    assert_refused(r, 400)
    assert snapshot(client) == before
    assert_healthy(client)


def test_reasonable_nesting_is_still_accepted(client):
    """The limit must not refuse real resources: a 20-level extension chain is stored."""
    r = client.post(
        "/fhir/Patient", content=_extension_chain(20), headers={**JSON, **auth_headers()}
    )
    assert r.status_code == 201, r.text
