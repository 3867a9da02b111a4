"""TD3.3a-d: conditional PATCH by uniqueId, as the guide writes it (JSON Patch), and the
same changes as FHIRPath Patch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pdsm4dmp.guide import FHIR, IS_ARCHIVED, JSON_PATCH, fhirpath_patch, label
from tests.security.world import UNKNOWN, same_answer

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
DR = "/fhir/DocumentReference"


def _patch(world, who: str, doc, ops: Any, *, json_patch: bool = True):
    ctype = JSON_PATCH if json_patch else FHIR["content-type"]
    return world.client.patch(
        f"{DR}?identifier={doc.ident}",
        json=ops,
        headers={**world.as_(who), "content-type": ctype},
    )


def _labels(resource: dict) -> set[str]:
    return {c["code"] for label in resource.get("securityLabel", []) for c in label["coding"]}


def _set_status(code: str) -> list[dict]:
    return [{"op": "replace", "path": "/securityLabel/0", "value": label(code)}]


def _reads(world, who: str, doc) -> int:
    return world.client.get(f"{DR}/{doc.id}", headers=world.as_(who)).status_code


def test_td33a_mask_then_unmask_by_the_guides_patch(world):
    doc = world.plain
    r = _patch(world, "holder", doc, _set_status("MASQUE_PS"))
    assert r.status_code == 200, r.text
    # the confidentiality code stays: MASQUE_PS is added, whatever sat at index 0
    assert _labels(r.json()) == {"N", "MASQUE_PS"}
    assert _reads(world, "authorised", doc) == 404
    r = _patch(world, "holder", doc, _set_status("N"))
    assert r.status_code == 200, r.text
    assert _labels(r.json()) == {"N"}
    assert _reads(world, "authorised", doc) == 200


def test_td33a_unmask_works_wherever_the_mask_sits(world):
    before = world.masked.resource["securityLabel"]
    assert _labels(world.masked.resource) == {"N", "MASQUE_PS"}
    assert "MASQUE_PS" not in str(before[0])  # index 0 is the confidentiality code
    r = _patch(world, "holder", world.masked, _set_status("N"))
    assert r.status_code == 200, r.text
    assert _labels(r.json()) == {"N"}


def test_td33b_hide_from_the_patient_then_show(world):
    doc = world.plain
    r = _patch(world, "author", doc, _set_status("INVISIBLE_PATIENT"))
    assert r.status_code == 200, r.text
    assert _labels(r.json()) == {"N", "INVISIBLE_PATIENT"}
    assert _reads(world, "holder", doc) == 404
    r = _patch(world, "author", doc, _set_status("N"))
    assert r.status_code == 200, r.text
    assert _reads(world, "holder", doc) == 200


def test_an_ambiguous_show_is_refused_and_changes_nothing(world):
    doc = world.plain
    both = [
        {"op": "add", "path": "/securityLabel/-", "value": label("MASQUE_PS")},
        {"op": "add", "path": "/securityLabel/-", "value": label("INVISIBLE_PATIENT")},
    ]
    assert _patch(world, "author", doc, both[1:]).status_code == 200
    assert _patch(world, "treating", doc, both[:1]).status_code == 200
    r = _patch(world, "treating", doc, _set_status("N"))
    assert r.status_code == 422, r.text
    assert "MASQUE_PS" in r.text and "INVISIBLE_PATIENT" in r.text
    # FHIRPath delete names the one meant
    unmask = fhirpath_patch(
        {"type": "delete", "path": "DocumentReference.securityLabel.where(coding.code='MASQUE_PS')"}
    )
    r = _patch(world, "treating", doc, unmask, json_patch=False)
    assert r.status_code == 200, r.text
    assert _labels(r.json()) == {"N", "INVISIBLE_PATIENT"}


def test_removing_the_confidentiality_code_is_refused(world):
    r = _patch(world, "holder", world.plain, [{"op": "remove", "path": "/securityLabel/0"}])
    assert r.status_code == 422, r.text


def test_td33c_entered_in_error_deletes_for_the_author_only(world):
    eie = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]
    assert _patch(world, "treating", world.plain, eie).status_code == 403
    r = _patch(world, "author", world.plain, eie)
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert _reads(world, "treating", world.plain) == 410
    found = world.client.get(
        f"{DR}?patient={world.victim}&identifier={world.plain.ident}", headers=world.as_("treating")
    )
    assert found.json().get("entry", []) == []


def test_td33c_conditional_delete_by_unique_id(world):
    url = f"{DR}?identifier={world.masked.ident}"
    # the authorised professional may not see the masked document: as for an unknown one
    hidden = world.client.delete(url, headers=world.as_("authorised"))
    absent = world.client.delete(
        f"{DR}?identifier=urn:ietf:rfc:3986|urn:oid:1.2.3", headers=world.as_("authorised")
    )
    assert hidden.status_code == absent.status_code == 404
    assert world.client.delete(url, headers=world.as_("holder")).status_code == 403
    assert world.client.delete(url, headers=world.as_("author")).status_code == 204
    assert _reads(world, "treating", world.masked) == 410


def test_td33d_archive_and_unarchive_with_the_guides_selector(world):
    path = f"/extension[url:'{IS_ARCHIVED}']/valueBoolean"
    r = _patch(world, "holder", world.plain, [{"op": "replace", "path": path, "value": True}])
    assert r.status_code == 200, r.text
    assert {"url": IS_ARCHIVED, "valueBoolean": True} in r.json()["extension"]
    current = f"{DR}?patient={world.victim}&status=current"

    def ids(query: str) -> list[str]:
        found = world.client.get(query, headers=world.as_("holder")).json()
        return [e["resource"]["id"] for e in found.get("entry", [])]

    assert world.plain.id not in ids(current)
    assert world.plain.id in ids(current + "&isArchived=true")
    r = _patch(world, "holder", world.plain, [{"op": "replace", "path": path, "value": False}])
    assert r.status_code == 200, r.text
    assert world.plain.id in ids(current)


def test_fhirpath_patch_standalone(world):
    body = fhirpath_patch(
        {
            "type": "replace",
            "path": "DocumentReference.status",
            "value": {"valueCode": "superseded"},
        }
    )
    r = world.client.patch(
        f"{DR}/{world.plain.id}", json=body, headers={**world.as_("author"), **FHIR}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "superseded" and r.json()["meta"]["versionId"] == "2"
    other = fhirpath_patch(
        {"type": "replace", "path": "DocumentReference.description", "value": {"valueString": "x"}}
    )
    r = world.client.patch(
        f"{DR}/{world.plain.id}", json=other, headers={**world.as_("author"), **FHIR}
    )
    assert r.status_code == 422 or r.status_code == 405, r.text


def test_unsupported_fhirpath_is_refused(world):
    body = fhirpath_patch(
        {
            "type": "delete",
            "path": "DocumentReference.securityLabel.where(coding.code.startsWith('M'))",
        }
    )
    r = world.client.patch(
        f"{DR}/{world.plain.id}", json=body, headers={**world.as_("author"), **FHIR}
    )
    assert r.status_code == 400, r.text
    assert "not supported" in r.text


def test_patch_of_a_hidden_document_answers_as_an_unknown_one(world):
    body = fhirpath_patch(
        {
            "type": "replace",
            "path": "DocumentReference.status",
            "value": {"valueCode": "superseded"},
        }
    )
    headers = {**world.as_("authorised"), **FHIR}
    hidden = world.client.patch(f"{DR}/{world.masked.id}", json=body, headers=headers)
    absent = world.client.patch(f"{DR}/{UNKNOWN}", json=body, headers=headers)
    same_answer(hidden, absent, world.masked.id)


def test_a_transaction_patch_entry_by_unique_id_with_a_json_patch(world):
    """A JSON Patch travels in a Bundle as a Binary (FHIR); the entry's url is conditional."""
    import base64
    import json

    ops = [
        {"op": "replace", "path": f"/extension[url:'{IS_ARCHIVED}']/valueBoolean", "value": True}
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Binary",
                    "contentType": JSON_PATCH,
                    "data": base64.b64encode(json.dumps(ops).encode()).decode(),
                },
                "request": {
                    "method": "PATCH",
                    "url": f"DocumentReference?identifier={world.plain.ident}",
                },
            }
        ],
    }
    r = world.client.post("/fhir", json=bundle, headers=world.as_("holder"))
    assert r.status_code == 200, r.text
    (answer,) = r.json()["entry"]
    assert answer["response"]["status"] == "200 OK"
    assert {"url": IS_ARCHIVED, "valueBoolean": True} in answer["resource"]["extension"]
