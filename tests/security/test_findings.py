"""Each finding of the attack on the access control, reproduced as the attacker made it
(the issue's numbering: C critical, H high, M medium, L low), on every store."""

from __future__ import annotations

import base64
from datetime import date

import orjson
import pytest

from fhir_server.policy.model import VISIBILITY_SYSTEM
from tests.access.test_dmp_scenario import _consent
from tests.security.world import (
    ATTACKER,
    BLOCKED,
    CDA,
    PATCH,
    TREATING,
    UNKNOWN,
    World,
    leaks,
    nir_with_key,
    patient,
    same_answer,
    sha1,
)

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")


def _patch(world: World, who: str, path: str, ops: list, **headers: str):
    return world.client.patch(
        f"/fhir/{path}", json=ops, headers={**world.as_(who), "content-type": PATCH, **headers}
    )


def _trail(world: World) -> list[dict]:
    r = world.client.get(
        "/fhir/AuditEvent",
        params={"patient": world.victim, "_count": 1000},
        headers=world.as_("holder"),
    )
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry") or []]


def _refused_by(events: list[dict], rpps: str, resource: str) -> list[dict]:
    return [
        e
        for e in events
        if e["outcome"] != "0"
        and any(a.get("who", {}).get("identifier", {}).get("value") == rpps for a in e["agent"])
        and any(resource in orjson.dumps(x).decode() for x in e.get("entity") or [])
    ]


# -- C1: a document's bytes read and overwritten through PUT Binary ---------------------


def test_c1_put_binary_pointing_at_own_document_is_refused_and_the_bytes_stay(world):
    body = {
        "resourceType": "Binary",
        "id": world.masked.binary,
        "contentType": "text/plain",
        "securityContext": {"reference": f"DocumentReference/{world.attacker_doc.id}"},
        "data": base64.b64encode(b"overwritten").decode(),
    }
    hidden = world.client.put(
        f"/fhir/Binary/{world.masked.binary}", json=body, headers=world.as_("attacker")
    )
    absent = world.client.put(
        f"/fhir/Binary/{UNKNOWN}", json={**body, "id": UNKNOWN}, headers=world.as_("attacker")
    )
    same_answer(hidden, absent, world.masked.binary)
    assert hidden.status_code == 404
    old = world.client.get(
        f"/fhir/Binary/{world.masked.binary}/_history/1", headers=world.as_("attacker")
    )
    assert old.status_code == 404 and not leaks(old, [world.masked.title])
    mine = world.client.get(f"/fhir/Binary/{world.masked.binary}", headers=world.as_("treating"))
    assert mine.status_code == 200 and mine.content == world.masked.data
    # recorded in the victim's trail, not the attacker's
    assert _refused_by(_trail(world), ATTACKER, f"Binary/{world.masked.binary}")


def test_c1_unrelated_system_cannot_detach_a_documents_content(world):
    body = {"resourceType": "Binary", "id": world.plain.binary, "contentType": "text/plain"}
    hidden = world.client.put(
        f"/fhir/Binary/{world.plain.binary}", json=body, headers=world.as_("other-system")
    )
    absent = world.client.put(
        f"/fhir/Binary/{UNKNOWN}", json={**body, "id": UNKNOWN}, headers=world.as_("other-system")
    )
    same_answer(hidden, absent, world.plain.binary)
    read = world.client.get(f"/fhir/Binary/{world.plain.binary}", headers=world.as_("holder"))
    assert read.status_code == 200 and read.content == world.plain.data


def test_c1_a_documents_content_never_changes_even_for_its_filer(world):
    body = {
        "resourceType": "Binary",
        "id": world.plain.binary,
        "contentType": "text/plain",
        "securityContext": {"reference": f"DocumentReference/{world.plain.id}"},
        "data": base64.b64encode(b"rewritten").decode(),
    }
    r = world.client.put(
        f"/fhir/Binary/{world.plain.binary}", json=body, headers=world.as_("author")
    )
    assert r.status_code == 405, r.text
    read = world.client.get(f"/fhir/Binary/{world.plain.binary}", headers=world.as_("treating"))
    assert read.content == world.plain.data


# -- C2: patch evaluated before the decision ------------------------------------------------

COPY_TITLE = [{"op": "copy", "from": "/content/0/attachment/title", "path": "/status"}]


@pytest.mark.parametrize("who", ["blocked", "insurer", "holder"])
def test_c2_patch_tells_nothing_before_the_decision(world, who):
    target = world.embargoed if who == "holder" else world.plain
    hidden = _patch(world, who, f"DocumentReference/{target.id}", COPY_TITLE)
    absent = _patch(world, who, f"DocumentReference/{UNKNOWN}", COPY_TITLE)
    same_answer(hidden, absent, target.id)
    assert hidden.status_code in (403, 404) and not leaks(hidden, target.secrets()[2:])
    probe = [{"op": "test", "path": "/status", "value": "current"}]
    same_answer(
        _patch(world, who, f"DocumentReference/{target.id}", probe),
        _patch(world, who, f"DocumentReference/{UNKNOWN}", probe),
        target.id,
    )


def test_c2_conditional_patch_finds_nothing_hidden(world):
    ident = world.embargoed.ident
    hidden = _patch(world, "holder", f"DocumentReference?identifier={ident}", COPY_TITLE)
    absent = _patch(
        world, "holder", "DocumentReference?identifier=urn:ietf:rfc:3986|urn:oid:1.2.3", COPY_TITLE
    )
    same_answer(hidden, absent, ident, "urn:ietf:rfc:3986|urn:oid:1.2.3")
    stored = [s for s in world.embargoed.secrets() if s != world.embargoed.unique_id]
    assert hidden.status_code == 404 and not leaks(hidden, stored)


def test_c2_probes_are_audited_in_the_victims_record(world):
    _patch(world, "blocked", f"DocumentReference/{world.plain.id}", COPY_TITLE)
    assert _refused_by(_trail(world), BLOCKED, f"DocumentReference/{world.plain.id}")


# -- C3: a blocked practitioner lifts their own block --------------------------------------


def test_c3_block_refusal_names_no_consent(world):
    r = world.client.get(
        "/fhir/DocumentReference",
        params={"patient": world.victim, "status": "current"},
        headers=world.as_("blocked"),
    )
    assert r.status_code == 403 and world.block not in r.text


@pytest.mark.parametrize("which", ["block", "opposition"])
def test_c3_a_consent_cannot_be_moved_out_of_its_record(world, which):
    consent_id = getattr(world, which)
    moved = {**_consent(world.blocked_record, "permit", BLOCKED), "id": consent_id}
    hidden = world.client.put(
        f"/fhir/Consent/{consent_id}", json=moved, headers=world.as_("blocked")
    )
    absent = world.client.put(
        f"/fhir/Consent/{UNKNOWN}", json={**moved, "id": UNKNOWN}, headers=world.as_("blocked")
    )
    same_answer(hidden, absent, consent_id)
    # still blocked; still opposed to break-glass
    r = world.client.get(f"/fhir/DocumentReference/{world.plain.id}", headers=world.as_("blocked"))
    assert r.status_code == 404
    glass = world.client.get(
        "/fhir/DocumentReference",
        params={"patient": world.victim, "status": "current"},
        headers=world.as_("glass"),
    )
    assert glass.status_code == 403


def test_c3_even_the_treating_physician_cannot_move_a_consent(world):
    moved = {**_consent(world.attacker_record, "deny", BLOCKED), "id": world.block}
    r = world.client.put(f"/fhir/Consent/{world.block}", json=moved, headers=world.as_("treating"))
    assert r.status_code == 422, r.text
    assert world.attacker_record not in r.text or "record" in r.text


# -- C4: any establishment rewrites any Patient -------------------------------------------


def _victim(world: World) -> dict:
    r = world.client.get(f"/fhir/Patient/{world.victim}", headers=world.as_("holder"))
    assert r.status_code == 200
    return r.json()


def test_c4_unrelated_establishment_cannot_name_the_treating_physician(world):
    body = _victim(world)
    body["generalPractitioner"] = [
        {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": ATTACKER}}
    ]
    r = world.client.put(
        f"/fhir/Patient/{world.victim}", json=body, headers=world.as_("other-staff")
    )
    assert r.status_code == 403, r.text
    masked = world.client.get(
        f"/fhir/DocumentReference/{world.masked.id}", headers=world.as_("attacker")
    )
    assert masked.status_code == 404


def test_c4_closure_is_server_managed_and_housekeeping_keeps_the_record(world):
    from fhir_server.policy.facts import CLOSED_AT_URL

    body = _victim(world)
    body["extension"] = [{"url": CLOSED_AT_URL, "valueDateTime": "2001-01-01T00:00:00+00:00"}]
    for who in ("other-staff", "holder", "treating"):
        r = world.client.put(f"/fhir/Patient/{world.victim}", json=body, headers=world.as_(who))
        assert r.status_code in (403, 422), (who, r.text)
    assert "extension" not in _victim(world) or all(
        e["url"] != CLOSED_AT_URL for e in _victim(world)["extension"]
    )


def test_c4_a_practitioner_opening_a_record_cannot_name_themselves(world):
    new = patient(nir_with_key("1790351215300"), ATTACKER)
    r = world.client.post("/fhir/Patient", json=new, headers=world.as_("attacker"))
    assert r.status_code == 403, r.text
    new.pop("generalPractitioner")
    assert (
        world.client.post("/fhir/Patient", json=new, headers=world.as_("attacker")).status_code
        == 201
    )


# -- H1: conditional operations run unscoped ------------------------------------------------


def test_h1_if_none_exist_does_not_reveal_a_hidden_match(world):
    from tests.access.test_dmp_scenario import _document

    doc = _document(world.victim, "Nouvelle lettre")
    doc["content"] = [{"attachment": {"contentType": "text/plain", "url": "Binary/x"}}]
    cond = f"patient={world.victim}&identifier={world.masked.ident}"
    r = world.client.post(
        "/fhir/DocumentReference",
        json=doc,
        headers={**world.as_("authorised"), "if-none-exist": cond},
    )
    assert not leaks(r, world.masked.secrets()[:1] + world.masked.secrets()[2:3]), r.text
    assert r.status_code == 201, r.text


def test_h1_patient_if_none_exist_is_by_ins_only(world):
    cond = "family=PAT-TROIS&birthdate=1979-03-28"
    r = world.client.post(
        "/fhir/Patient",
        json=patient(nir_with_key("1790351215400"), None),
        headers={**world.as_("insurer"), "if-none-exist": cond},
    )
    assert r.status_code == 400 and world.victim not in r.text


def test_h1_conditional_patch_counts_only_what_the_actor_sees(world):
    # plain and embargoed match; the patient sees only the plain one
    not_masked = f"{VISIBILITY_SYSTEM}|MASQUE_PS"
    query = (
        f"DocumentReference?patient={world.victim}&status=current&security-label:not={not_masked}"
    )
    unchanged = [{"op": "replace", "path": "/status", "value": "current"}]
    r = _patch(world, "holder", query, unchanged)
    assert r.status_code == 200 and r.json()["id"] == world.plain.id, r.text
    assert not leaks(r, world.embargoed.secrets())


# -- H2: the embargo counted by the store on the CDA's date ---------------------------------


def test_h2_totals_counts_and_pages_agree_with_what_the_patient_sees(world):
    base = {"patient": world.victim, "status": "current"}
    h = world.as_("holder")
    r = world.client.get(
        "/fhir/DocumentReference", params={**base, "_total": "accurate"}, headers=h
    )
    entries = r.json().get("entry") or []
    assert r.json()["total"] == len(entries) == 2
    count = world.client.get(
        "/fhir/DocumentReference", params={**base, "_summary": "count"}, headers=h
    )
    assert count.json()["total"] == 2
    seen: list[str] = []
    url, params = "/fhir/DocumentReference", {**base, "_count": "1"}
    while url:
        page = world.client.get(url, params=params, headers=h)
        assert page.status_code == 200
        got = [e["resource"]["id"] for e in page.json().get("entry") or []]
        assert got, "an empty page"
        seen += got
        assert not leaks(page, world.embargoed.secrets())
        nxt = [x["url"] for x in page.json()["link"] if x["relation"] == "next"]
        url, params = ("/fhir" + nxt[0].split("/fhir", 1)[1], None) if nxt else (None, None)
    assert world.embargoed.id not in seen and len(seen) == 2


# -- H3: the patient's trail names what is hidden from them ---------------------------------


def test_h3_trail_omits_documents_hidden_from_the_patient(world):
    world.client.get(f"/fhir/DocumentReference/{world.embargoed.id}", headers=world.as_("holder"))
    for who in ("holder", "legal-rep"):
        r = world.client.get(
            "/fhir/AuditEvent",
            params={"patient": world.victim, "_count": 1000},
            headers=world.as_(who),
        )
        assert r.status_code == 200
        assert not leaks(r, [world.embargoed.id, world.embargoed.binary])
    treating = world.client.get(
        "/fhir/AuditEvent",
        params={"patient": world.victim, "_count": 1000},
        headers=world.as_("treating"),
    )
    assert world.embargoed.id in treating.text


# -- H4: more disclosures ------------------------------------------------------------------


def test_h4_a_taken_unique_id_names_no_holder(world):
    from tests.access.test_dmp_scenario import _document

    doc = _document(world.victim, "Copie")
    doc["content"] = [{"attachment": {"contentType": "text/plain", "url": "Binary/x"}}]
    doc["masterIdentifier"] = world.masked.resource["masterIdentifier"]
    r = world.client.post("/fhir/DocumentReference", json=doc, headers=world.as_("stranger"))
    assert r.status_code in (403, 409) and not leaks(r, world.masked.secrets()), r.text
    put = world.client.put(
        f"/fhir/DocumentReference/{UNKNOWN}",
        json={**doc, "id": UNKNOWN},
        headers=world.as_("stranger"),
    )
    assert not leaks(put, world.masked.secrets()), put.text
    other = world.masked.data.replace(b"Lettre masquee", b"Autre contenu")
    filed = world.client.post(
        "/fhir/DocumentReference/$import-cda",
        content=other,
        headers={**world.as_("other-system"), "content-type": CDA},
    )
    assert filed.status_code == 409 and not leaks(filed, world.masked.secrets()), filed.text


def test_h4_a_blocked_practitioner_cannot_tell_the_record_exists(world):
    from tests.conftest import INS_TEST_SYSTEM, VALID_INS

    def search(**params):
        return world.client.get(
            "/fhir/DocumentReference",
            params={**params, "status": "current"},
            headers=world.as_("blocked"),
        )

    same_answer(search(patient=world.victim), search(patient=UNKNOWN), world.victim)
    unknown_ins = nir_with_key("2790351215999")
    same_answer(
        search(**{"patient.identifier": f"{INS_TEST_SYSTEM}|{VALID_INS}"}),
        search(**{"patient.identifier": f"{INS_TEST_SYSTEM}|{unknown_ins}"}),
        VALID_INS,
        unknown_ins,
    )


# -- M1 to M5 ------------------------------------------------------------------------------


def test_m1_writes_on_a_hidden_id_answer_as_on_an_unknown_one(world):
    c = world.client
    h = world.as_("authorised")
    mask = [
        {
            "op": "add",
            "path": "/securityLabel/-",
            "value": {"coding": [{"system": VISIBILITY_SYSTEM, "code": "MASQUE_PS"}]},
        }
    ]
    same_answer(
        _patch(world, "authorised", f"DocumentReference/{world.masked.id}", mask),
        _patch(world, "authorised", f"DocumentReference/{UNKNOWN}", mask),
        world.masked.id,
    )
    body = dict(world.masked.resource)
    same_answer(
        c.put(f"/fhir/DocumentReference/{world.masked.id}", json=body, headers=h),
        c.put(f"/fhir/DocumentReference/{UNKNOWN}", json={**body, "id": UNKNOWN}, headers=h),
        world.masked.id,
    )
    same_answer(
        c.delete(f"/fhir/DocumentReference/{world.masked.id}", headers=h),
        c.delete(f"/fhir/DocumentReference/{UNKNOWN}", headers=h),
        world.masked.id,
    )


def test_m2_versions_of_a_deleted_document_follow_its_last_labels(world):
    mask = [
        {
            "op": "add",
            "path": "/securityLabel/-",
            "value": {"coding": [{"system": VISIBILITY_SYSTEM, "code": "MASQUE_PS"}]},
        }
    ]
    assert _patch(world, "holder", f"DocumentReference/{world.plain.id}", mask).status_code == 200
    r = world.client.delete(
        f"/fhir/DocumentReference/{world.plain.id}", headers=world.as_("author")
    )
    assert r.status_code == 204
    v1 = world.client.get(
        f"/fhir/DocumentReference/{world.plain.id}/_history/1", headers=world.as_("authorised")
    )
    assert v1.status_code == 404 and not leaks(v1, [world.plain.title])
    b1 = world.client.get(
        f"/fhir/Binary/{world.plain.binary}/_history/1", headers=world.as_("authorised")
    )
    assert b1.status_code == 404


def test_m3_a_minor_has_no_access_of_their_own(world):
    today = date.today()
    birth = f"{today.year - 10}-01-01"
    insurer = world.as_("insurer")
    r = world.client.post(
        "/fhir/Patient", json=patient(nir_with_key("1150351215500"), None, birth), headers=insurer
    )
    assert r.status_code == 201, r.text
    minor = world.token("patient", patient=r.json()["id"])
    got = world.client.get(
        "/fhir/DocumentReference",
        params={"patient": r.json()["id"], "status": "current"},
        headers=minor,
    )
    assert got.status_code == 403 and "minor" in got.text
    rep = world.token("legal-representative", patient=r.json()["id"])
    ok = world.client.get(
        "/fhir/DocumentReference",
        params={"patient": r.json()["id"], "status": "current"},
        headers=rep,
    )
    assert ok.status_code == 200


def test_m4_refiling_needs_the_bytes_not_a_claimed_hash(world):
    from tests.access.test_dmp_scenario import _document

    doc = _document(world.victim, "peu importe")
    doc["masterIdentifier"] = world.masked.resource["masterIdentifier"]
    doc["content"] = [
        {
            "attachment": {
                "contentType": "text/xml",
                "hash": world.masked.resource["content"][0]["attachment"]["hash"],
            }
        }
    ]
    r = world.client.post("/fhir/DocumentReference", json=doc, headers=world.as_("other-system"))
    assert r.status_code != 200 and not leaks(r, world.masked.secrets()), r.text
    # the very bytes, sent again by a filer, still get the filed document back
    again = world.client.post(
        "/fhir/DocumentReference/$import-cda",
        content=world.masked.data,
        params={"security-label": "MASQUE_PS"},
        headers={**world.as_("hospital-system"), "content-type": CDA},
    )
    assert again.status_code == 200 and again.json()["id"] == world.masked.id


def test_m5_refused_reads_are_in_the_victims_trail(world):
    world.client.get(f"/fhir/DocumentReference/{world.masked.id}", headers=world.as_("attacker"))
    assert _refused_by(_trail(world), ATTACKER, f"DocumentReference/{world.masked.id}")


# -- L1, L2 --------------------------------------------------------------------------------


def test_l1_copying_an_object_onto_status_is_a_client_error(world):
    ops = [{"op": "copy", "from": "/content/0/attachment", "path": "/status"}]
    r = _patch(world, "treating", f"DocumentReference/{world.plain.id}", ops)
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("blank", ["\u00a0", "\u200b", "\u2003\u200b", "\ufeff"])
def test_l2_a_justification_needs_visible_characters(world, blank):
    # sent as UTF-8, as a client would
    headers = {**world.as_("glass"), "x-access-justification": blank.encode()}
    r = world.client.get(
        "/fhir/DocumentReference",
        params={"patient": world.attacker_record, "status": "current"},
        headers=headers,
    )
    assert r.status_code == 403 and "justification" in r.text


def test_treating_physician_keeps_reading_everything(world):
    for doc in (world.plain, world.masked, world.embargoed):
        r = world.client.get(f"/fhir/DocumentReference/{doc.id}", headers=world.as_("treating"))
        assert r.status_code == 200
    assert TREATING
    assert sha1(world.plain.data) == world.plain.resource["content"][0]["attachment"]["hash"]
