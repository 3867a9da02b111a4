"""TD3.2, case 3: a document whose content is a FHIR document (a Bundle of type
`document`, filed by ITI-65 as a Binary of `application/fhir+json`) is read as
`GET Bundle/{id}`, under its DocumentReference's rules, like its Binary."""

from __future__ import annotations

import base64

import orjson
import pytest

from fhir_server.fhir.xml import resource_to_xml
from tests.pdsm4dmp.guide import doc_of, iti65, label
from tests.security.world import UNKNOWN, cda, same_answer

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")

DOCUMENT = {
    "resourceType": "Bundle",
    "type": "document",
    "identifier": {
        "system": "urn:ietf:rfc:3986",
        "value": "urn:uuid:5b3c1b7e-0d2a-4c4e-9d0f-1a2b3c4d5e6f",
    },
    "timestamp": "2026-06-12T10:00:00+02:00",
    "entry": [
        {
            "fullUrl": "urn:uuid:0c6f2c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e",
            "resource": {
                "resourceType": "Composition",
                "status": "final",
                "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
                "date": "2026-06-12T10:00:00+02:00",
                "author": [{"display": "Dr Auteur"}],
                "title": "Compte rendu de consultation",
            },
        }
    ],
}


def _file_fhir_document(
    world, *labels: str, media_type: str = "application/fhir+json"
) -> tuple[str, str]:
    """ITI-65 of a FHIR document: the guide's Bundle, its Binary holding the document."""
    xml = media_type.endswith("xml")
    content = resource_to_xml(DOCUMENT) if xml else orjson.dumps(DOCUMENT)
    bundle = iti65(cda())
    doc = bundle["entry"][1]["resource"]
    doc["content"][0]["attachment"]["contentType"] = media_type
    doc["securityLabel"] = [*doc.get("securityLabel", []), *(label(c) for c in labels)]
    bundle["entry"][2]["resource"] = {
        "resourceType": "Binary",
        "contentType": media_type,
        "data": base64.b64encode(content).decode(),
    }
    r = world.client.post("/fhir", json=bundle, headers=world.as_("author"))
    assert r.status_code == 200, r.text
    filed = doc_of(r.json())
    return filed["id"], filed["content"][0]["attachment"]["url"].rsplit("/", 1)[1]


def test_a_fhir_document_is_read_as_a_bundle(world):
    _, content = _file_fhir_document(world)
    r = world.client.get(f"/fhir/Bundle/{content}", headers=world.as_("treating"))
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
    assert bundle["id"] == content
    assert bundle["entry"][0]["resource"]["title"] == "Compte rendu de consultation"
    assert r.headers["etag"] == 'W/"1"'


def test_a_fhir_document_filed_in_xml_is_read_in_either_format(world):
    _, content = _file_fhir_document(world, media_type="application/fhir+xml")
    r = world.client.get(f"/fhir/Bundle/{content}", headers=world.as_("treating"))
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["resource"]["title"] == "Compte rendu de consultation"
    headers = {**world.as_("treating"), "Accept": "application/fhir+xml"}
    r = world.client.get(f"/fhir/Bundle/{content}", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+xml")
    assert b"Compte rendu de consultation" in r.content and b"<Bundle" in r.content


def test_hidden_not_a_fhir_document_and_unknown_answer_alike(world):
    _, masked = _file_fhir_document(world, "MASQUE_PS")
    authorised = world.as_("authorised")
    unknown = world.client.get(f"/fhir/Bundle/{UNKNOWN}", headers=authorised)
    assert unknown.status_code == 404
    hidden = world.client.get(f"/fhir/Bundle/{masked}", headers=authorised)
    same_answer(hidden, unknown, masked)
    # a CDA's content is not a FHIR document: as an unknown id, also to who may read it
    cda_content = world.client.get(f"/fhir/Bundle/{world.plain.binary}", headers=authorised)
    same_answer(cda_content, unknown, world.plain.binary)
    # the treating physician reads the masked one
    assert (
        world.client.get(f"/fhir/Bundle/{masked}", headers=world.as_("treating")).status_code == 200
    )


def test_who_may_not_read_documents_is_refused_alike(world):
    _, content = _file_fhir_document(world)
    for who in ("hospital-system", "insurer"):
        r = world.client.get(f"/fhir/Bundle/{content}", headers=world.as_(who))
        absent = world.client.get(f"/fhir/Bundle/{UNKNOWN}", headers=world.as_(who))
        assert r.status_code == 403, who
        same_answer(r, absent, content)


def test_a_batch_retrieves_fhir_documents_beside_binaries(world):
    """TD3.2 with several documents: `GET Bundle/{id}` entries, absolute or relative, in a
    batch with a CDA's Binary; a hidden one answers as an unknown id, alone."""
    _, content = _file_fhir_document(world)
    _, masked = _file_fhir_document(world, "MASQUE_PS")
    base = str(world.client.base_url).rstrip("/") + "/fhir"
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"{base}/Bundle/{content}"}},
            {"request": {"method": "GET", "url": f"Binary/{world.plain.binary}"}},
            {"request": {"method": "GET", "url": f"Bundle/{masked}"}},
            {"request": {"method": "GET", "url": f"Bundle/{UNKNOWN}"}},
        ],
    }
    r = world.client.post("/fhir", json=batch, headers=world.as_("authorised"))
    assert r.status_code == 200, r.text
    first, binary, hidden, unknown = r.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["fullUrl"].endswith(f"/Bundle/{content}")
    assert first["resource"]["type"] == "document"
    assert first["resource"]["entry"][0]["resource"]["title"] == "Compte rendu de consultation"
    assert binary["resource"]["resourceType"] == "Binary"
    assert hidden["response"]["status"] == unknown["response"]["status"] == "404"
    # the same words, but for the id and the entry's place
    text = orjson.dumps(hidden["response"]["outcome"]).replace(masked.encode(), b"X")
    text = text.replace(b"entry[2]", b"entry[3]")
    assert text == orjson.dumps(unknown["response"]["outcome"]).replace(UNKNOWN.encode(), b"X")
    # a FHIR document is only read: another method on it is a malformed Bundle
    batch["entry"] = [{"request": {"method": "DELETE", "url": f"Bundle/{content}"}}]
    r = world.client.post("/fhir", json=batch, headers=world.as_("authorised"))
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    read = world.client.get(f"/fhir/Bundle/{content}", headers=world.as_("authorised"))
    assert read.status_code == 200
