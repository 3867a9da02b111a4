"""exemples_usage_dmp.md, "accès suivants" [later visits]: the professional's software
lists what changed since its last call, `DocumentReference?patient.identifier=<INS>&
_lastUpdated=gt<dateAppelDMP>` without `status`, and tells apart a new document, a
replacement (cas A: `relatesTo replaces` a known id; the replaced one now `superseded`)
and a metadata change (cas B: a known id, a new version)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import INS_TEST_SYSTEM, VALID_INS
from tests.pdsm4dmp.guide import INS_REF, JSON_PATCH, doc_of, iti65, label, supersede_entry
from tests.security.world import cda

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
BY_INS = f"patient.identifier={INS_TEST_SYSTEM}|{VALID_INS}"


def _documents(world, query: str) -> list[dict]:
    r = world.client.get(f"/fhir/DocumentReference?{BY_INS}&{query}", headers=world.as_("treating"))
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


def _classify(known: dict[str, str], changed: list[dict]) -> dict[str, set[str]]:
    """The guide's reading of the changes: `known` maps the local ids to their versions."""
    out: dict[str, set[str]] = {
        "skipped": set(),
        "replacement": set(),
        "metadata": set(),
        "new": set(),
    }
    for doc in changed:
        replaced = {
            r["target"]["reference"].rsplit("/", 1)[1]
            for r in doc.get("relatesTo", [])
            if r["code"] == "replaces"
        }
        if doc["status"] == "superseded":
            out["skipped"].add(doc["id"])
        elif replaced & set(known):
            out["replacement"].add(doc["id"])
        elif doc["id"] in known:
            assert doc["meta"]["versionId"] != known[doc["id"]]
            out["metadata"].add(doc["id"])
        else:
            out["new"].add(doc["id"])
    return out


def test_later_visit_tells_new_documents_replacements_and_metadata_changes(world):
    # first opening: the software keeps the ids, versions, and the time of its call
    first = _documents(world, "status=current")
    known = {d["id"]: d["meta"]["versionId"] for d in first}
    assert {world.plain.id, world.masked.id, world.embargoed.id} <= set(known)
    called = max(d["meta"]["lastUpdated"] for d in first)
    assert _documents(world, f"_lastUpdated=gt{quote(called)}") == []

    # meanwhile: a new document, a replacement (TD2.1), the holder unmasks a document
    new = world.client.post(
        "/fhir/DocumentReference/$import-cda",
        content=cda(title="Nouvelle lettre"),
        headers={**world.as_("author"), "content-type": "application/hl7-cda+xml"},
    )
    assert new.status_code == 201, new.text
    bundle = iti65(cda(), INS_REF, supersede_entry(world.plain.id), replaces=world.plain.id)
    replaced = world.client.post("/fhir", json=bundle, headers=world.as_("author"))
    assert replaced.status_code == 200, replaced.text
    replacement = doc_of(replaced.json())["id"]
    unmask = world.client.patch(
        f"/fhir/DocumentReference?identifier={world.masked.ident}",
        json=[{"op": "replace", "path": "/securityLabel/0", "value": label("N")}],
        headers={**world.as_("holder"), "content-type": JSON_PATCH},
    )
    assert unmask.status_code == 200, unmask.text

    # later visit
    changed = _documents(world, f"_lastUpdated=gt{quote(called)}")
    assert _classify(known, changed) == {
        "skipped": {world.plain.id},
        "replacement": {replacement},
        "metadata": {world.masked.id},
        "new": {new.json()["id"]},
    }
    # ids are stable: the replaced document and the unmasked one keep theirs
    by_id = {d["id"]: d for d in changed}
    assert by_id[world.plain.id]["meta"]["versionId"] == "2"
    assert by_id[world.masked.id]["securityLabel"][0]["coding"][0]["code"] == "N"
    # nothing changed since this visit
    since = max(d["meta"]["lastUpdated"] for d in changed)
    assert _documents(world, f"_lastUpdated=gt{quote(since)}") == []
