"""TD2.1: replace a document with ITI-65, the Bundle superseding the old one by a FHIRPath
Patch entry (MHD UpdateDocumentRefs), all in one commit."""

from __future__ import annotations

import pytest

from tests.pdsm4dmp.guide import INS_REF, entry, fhirpath_patch, iti65, supersede_entry, urn
from tests.security.world import cda

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")


def test_td21_replacement_bundle_supersedes_the_old_document(world):
    old = world.plain.id
    bundle = iti65(cda(), INS_REF, supersede_entry(old), replaces=old)
    r = world.client.post("/fhir", json=bundle, headers=world.as_("author"))
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "200 OK", "201 Created"]
    patched = r.json()["entry"][2]["resource"]
    assert patched["id"] == old and patched["status"] == "superseded"
    new = r.json()["entry"][1]["resource"]["id"]
    treating = world.as_("treating")
    assert (
        world.client.get(f"/fhir/DocumentReference/{old}", headers=treating).json()["status"]
        == "superseded"
    )
    # TD3.1a `related`: the new version is found by the document it replaces
    found = world.client.get(
        f"/fhir/DocumentReference?patient={world.victim}&related=DocumentReference/{old}"
        "&status=current",
        headers=treating,
    )
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [new]


def test_a_patch_entry_that_does_not_supersede_the_replaced_document_is_refused(world):
    old = world.plain.id
    archive = fhirpath_patch(
        {"type": "replace", "path": "DocumentReference.status", "value": {"valueCode": "current"}}
    )
    bundle = iti65(
        cda(), INS_REF, entry(urn(), archive, "PATCH", f"DocumentReference/{old}"), replaces=old
    )
    r = world.client.post("/fhir", json=bundle, headers=world.as_("author"))
    assert r.status_code == 422, r.text
    assert "superseded" in r.text
    # nothing of the Bundle was stored
    doc = world.client.get(f"/fhir/DocumentReference/{old}", headers=world.as_("treating"))
    assert doc.json()["status"] == "current" and doc.json()["meta"]["versionId"] == "1"


def test_a_failing_entry_leaves_the_patch_unapplied(world):
    """All or nothing: the PATCH of an entry is not committed when another entry fails."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            supersede_entry(world.plain.id),
            entry(urn(), {"resourceType": "Consent", "status": "nonsense"}, "POST", "Consent"),
        ],
    }
    r = world.client.post("/fhir", json=bundle, headers=world.as_("author"))
    assert r.status_code >= 400
    doc = world.client.get(
        f"/fhir/DocumentReference/{world.plain.id}", headers=world.as_("treating")
    )
    assert doc.json()["status"] == "current"
