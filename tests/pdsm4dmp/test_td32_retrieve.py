"""TD3.2 (ITI-68): the CDA as filed by `GET attachment.url` with the Accept the guide
names, the Binary resource with a FHIR format, and the `batch` of absolute Binary URLs of
exemples_usage_dmp.md."""

from __future__ import annotations

import base64

import pytest

from fhir_server.api.formats import RAW, binary_format
from tests.pdsm4dmp.guide import IS_ARCHIVED
from tests.security.world import UNKNOWN

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
BASE = "http://testserver/fhir"


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        ("application/xml", "text/xml", RAW),
        ("text/xml", "application/hl7-cda+xml", RAW),
        ("application/fhir+json", "text/xml", "application/fhir+json"),
        ("application/fhir+json;q=0.5, application/xml", "text/xml", RAW),
        ("application/xml;q=0.1, application/fhir+json", "text/xml", "application/fhir+json"),
        ("application/xml", "application/pdf", "application/fhir+xml"),
        ("application/pdf, application/fhir+json", "application/pdf", RAW),
        ("application/xml;q=0, application/fhir+json", "text/xml", "application/fhir+json"),
        ("*/*", "application/pdf", RAW),
        ("", "text/xml", None),
    ],
)
def test_binary_negotiation(accept, content_type, expected):
    assert binary_format(accept, content_type) == expected


@pytest.mark.parametrize(
    "accept", ["application/xml", "text/xml", "application/fhir+json;q=0.2, text/xml"]
)
def test_xml_accept_returns_the_cda_as_filed(world, accept):
    r = world.client.get(
        f"/fhir/Binary/{world.plain.binary}", headers={**world.as_("treating"), "accept": accept}
    )
    assert r.status_code == 200, r.text
    assert r.content == world.plain.data


def test_fhir_accept_returns_the_binary_resource(world):
    r = world.client.get(
        f"/fhir/Binary/{world.plain.binary}",
        headers={**world.as_("treating"), "accept": "application/fhir+json"},
    )
    assert r.json()["resourceType"] == "Binary"
    assert base64.b64decode(r.json()["data"]) == world.plain.data


def test_batch_of_absolute_binary_urls(world):
    urls = [f"{BASE}/Binary/{world.plain.binary}", f"{BASE}/Binary/{world.masked.binary}"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": u}} for u in [*urls, f"{BASE}/Binary/{UNKNOWN}"]
        ],
    }
    r = world.client.post("/fhir", json=bundle, headers=world.as_("treating"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in out["entry"]] == ["200", "200", "404"]
    assert base64.b64decode(out["entry"][0]["resource"]["data"]) == world.plain.data
    # the masked document's content, for an authorised professional: as an unknown one
    hidden = world.client.post("/fhir", json=bundle, headers=world.as_("authorised")).json()
    statuses = [e["response"]["status"][:3] for e in hidden["entry"]]
    assert statuses == ["200", "404", "404"]
    masked, unknown = (hidden["entry"][i]["response"]["outcome"] for i in (1, 2))
    # the same text, but for the id asked for and the entry's place
    masked_text = str(masked).replace(world.masked.binary, "<id>").replace("entry[1]", "entry[n]")
    assert masked_text == str(unknown).replace(UNKNOWN, "<id>").replace("entry[2]", "entry[n]")


def test_a_url_of_another_server_is_refused(world):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "https://dmp.esante.gouv.fr/fhir/Binary/x"}}
        ],
    }
    r = world.client.post("/fhir", json=bundle, headers=world.as_("treating"))
    assert r.status_code == 400


def test_attachment_url_is_an_absolute_url_of_this_server(world):
    """MHD: `attachment.url` is absolute; it is retrieved as given, read, searched or in
    XML alike."""
    treating = world.as_("treating")
    expected = f"{BASE}/Binary/{world.plain.binary}"
    read = world.client.get(f"/fhir/DocumentReference/{world.plain.id}", headers=treating)
    assert read.json()["content"][0]["attachment"]["url"] == expected
    found = world.client.get(
        f"/fhir/DocumentReference?patient={world.victim}&_id={world.plain.id}", headers=treating
    )
    assert found.json()["entry"][0]["resource"]["content"][0]["attachment"]["url"] == expected
    xml = world.client.get(
        f"/fhir/DocumentReference/{world.plain.id}?_format=xml", headers=treating
    )
    assert f'<url value="{expected}"/>' in xml.text
    raw = world.client.get(expected, headers={**treating, "accept": "application/xml"})
    assert raw.content == world.plain.data


def test_a_document_sent_back_with_its_absolute_url_is_unchanged(world):
    """What a client read, sent back with a metadata change, changes only that metadata."""
    treating = world.as_("treating")
    doc = world.client.get(f"/fhir/DocumentReference/{world.plain.id}", headers=treating).json()
    doc["extension"] = [*doc.get("extension", []), {"url": IS_ARCHIVED, "valueBoolean": True}]
    r = world.client.put(f"/fhir/DocumentReference/{world.plain.id}", json=doc, headers=treating)
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["attachment"]["url"] == f"{BASE}/Binary/{world.plain.binary}"
    # a url naming another Binary is still a change of the document's content
    doc = r.json()
    doc["content"][0]["attachment"]["url"] = f"{BASE}/Binary/{world.masked.binary}"
    other = world.client.put(
        f"/fhir/DocumentReference/{world.plain.id}", json=doc, headers=treating
    )
    assert other.status_code == 405, other.text
