"""The feeding profile: a filer (the author, the filing establishment) finds, archives,
replaces and deletes its own documents without an authorisation to read the record."""

from __future__ import annotations

import pytest

from tests.access.test_dmp_scenario import _consent
from tests.conftest import INS_TEST_SYSTEM, VALID_INS, nir_with_key
from tests.pdsm4dmp.guide import IS_ARCHIVED, JSON_PATCH
from tests.security.world import cda, patient

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")
DR = "/fhir/DocumentReference"
BY_INS = f"patient.identifier={INS_TEST_SYSTEM}|{VALID_INS}"


def _ids(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [
        e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


@pytest.mark.parametrize("who", ["author", "hospital-system"])
def test_td31b_a_filer_finds_its_document_by_unique_id(world, who):
    r = world.client.get(f"{DR}?{BY_INS}&identifier={world.masked.ident}", headers=world.as_(who))
    assert _ids(r) == [world.masked.id]
    # its own documents only, masked included (it filed them)
    ids = ",".join(d.ident for d in (world.plain, world.masked, world.embargoed))
    mine = world.client.get(f"{DR}?{BY_INS}&identifier={ids}", headers=world.as_(who))
    assert set(_ids(mine)) == {world.plain.id, world.masked.id, world.embargoed.id}
    # a search for anything else needs the right to read the record
    browse = world.client.get(f"{DR}?{BY_INS}&status=current", headers=world.as_(who))
    assert browse.status_code == 403


def test_a_filer_finds_nothing_it_did_not_file(world):
    # the stranger has filed nothing in this record: an empty result, no refusal
    other = world.token("practitioner", rpps="10000000012")
    query = f"{DR}?{BY_INS}&identifier={world.plain.ident}"
    assert _ids(world.client.get(query, headers=other)) == []
    assert _ids(world.client.get(query, headers=world.as_("other-system"))) == []


def test_roles_that_never_file_are_still_refused(world):
    query = f"{DR}?{BY_INS}&identifier={world.plain.ident}"
    assert world.client.get(query, headers=world.as_("insurer")).status_code == 403
    assert world.client.get(query, headers=world.as_("blocked")).status_code == 403


def test_the_filing_establishment_archives_what_it_filed(world):
    path = f"/extension[url:'{IS_ARCHIVED}']/valueBoolean"
    r = world.client.patch(
        f"{DR}?identifier={world.plain.ident}",
        json=[{"op": "replace", "path": path, "value": True}],
        headers={**world.as_("hospital-system"), "content-type": JSON_PATCH},
    )
    assert r.status_code == 200, r.text
    other = world.client.patch(
        f"{DR}?identifier={world.plain.ident}",
        json=[{"op": "replace", "path": path, "value": False}],
        headers={**world.as_("other-system"), "content-type": JSON_PATCH},
    )
    assert other.status_code == 404  # not its document: as for an unknown one


def test_the_author_deletes_but_the_establishment_may_not(world):
    """dmp-rules.md: only the document's author may delete it (the law, over the brief's
    "filer deletes")."""
    url = f"{DR}?identifier={world.plain.ident}"
    assert world.client.delete(url, headers=world.as_("hospital-system")).status_code == 403
    assert world.client.delete(url, headers=world.as_("author")).status_code == 204


def test_the_filing_establishment_replaces_its_document(world):
    import base64

    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "relatesTo": [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{world.plain.id}"}}
        ],
        "content": [
            {"attachment": {"contentType": "text/xml", "data": base64.b64encode(cda()).decode()}}
        ],
    }
    r = world.client.post(DR, json=doc, headers=world.as_("hospital-system"))
    assert r.status_code == 201, r.text
    old = world.client.get(
        f"{DR}?{BY_INS}&identifier={world.plain.ident}", headers=world.as_("hospital-system")
    )
    assert old.json()["entry"][0]["resource"]["status"] == "superseded"


def _finds(world, who: str, ins: str, ident: str) -> int:
    query = f"{DR}?patient.identifier={INS_TEST_SYSTEM}|{ins}&identifier={ident}"
    return world.client.get(query, headers=world.as_(who)).status_code


def _looks_up(world, who: str, ins: str) -> bool:
    r = world.client.get(
        f"/fhir/Patient?identifier={INS_TEST_SYSTEM}|{ins}", headers=world.as_(who)
    )
    assert r.status_code == 200, r.text
    return bool(r.json().get("entry"))


@pytest.mark.parametrize("who", ["stranger", "other-system", "blocked", "author"])
def test_find_own_tells_no_more_than_the_identity_lookup(world, who):
    """The feeding profile's answer (200, possibly empty, or 403) says whether the record
    is open to the actor exactly when the identity lookup (TD0.2) already does: a record
    that does not exist, an opposed one and one that blocks the actor answer alike."""
    holder = world.as_("holder")
    opposed_ins = nir_with_key("2790351215400")
    opposed = world.client.post(
        "/fhir/Patient", json=patient(opposed_ins, None), headers=world.as_("insurer")
    )
    assert opposed.status_code == 201, opposed.text
    owner = world.token("patient", patient=opposed.json()["id"])
    deny = _consent(opposed.json()["id"], "deny")
    assert world.client.post("/fhir/Consent", json=deny, headers=owner).status_code == 201
    closed = world.client.post(f"/fhir/Patient/{world.victim}/$close", headers=holder)
    assert closed.status_code == 200, closed.text
    absent_ins = nir_with_key("2790351215999")
    for ins in (VALID_INS, opposed_ins, absent_ins):
        status = _finds(world, who, ins, world.plain.ident)
        assert status == (200 if _looks_up(world, who, ins) else 403), (who, ins)
    refused = [
        world.client.get(
            f"{DR}?patient.identifier={INS_TEST_SYSTEM}|{ins}&identifier={world.plain.ident}",
            headers=world.as_(who),
        )
        for ins in (VALID_INS, opposed_ins, absent_ins)
    ]
    texts = {r.text for r in refused if r.status_code == 403}
    assert len(texts) <= 1, texts  # one text for every refused record
