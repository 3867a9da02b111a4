"""Hidden and absent are the same answer: every interaction, on every type of the victim's
record, for every kind of actor.

For each actor, each resource of the victim's record that this actor may not read (its
read does not answer 200, and the actor did not file it) is asked for through every
interaction, side by side with an id that does not exist. The two answers must match
(status and body, once the id asked for is set aside), and no answer may carry a value
stored in the hidden resource.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.security.world import PATCH, UNKNOWN, World, leaks, same_answer

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")

# every kind of actor the DMP knows, with what their rules hide of the victim's record
ACTORS = (
    "stranger",  # a practitioner without authorisation
    "attacker",  # treats a record of their own
    "blocked",  # blocked by the patient
    "authorised",  # authorised: MASQUE_PS hidden
    "glass",  # break-glass on a record that opposed it
    "holder",  # the patient: INVISIBLE_PATIENT hidden during its month
    "legal-rep",
    "insurer",  # the Assurance Maladie: opens records, reads none
    "other-staff",  # an unrelated establishment
    "other-system",
)
# pairs the rules say are hidden: the walk below must meet each of them
MUST_MEET = {
    ("stranger", "plain"),
    ("blocked", "plain"),
    ("glass", "plain"),
    ("authorised", "masked"),
    ("holder", "embargoed"),
    ("legal-rep", "embargoed"),
    ("other-system", "masked"),
    ("stranger", "block"),
    ("blocked", "block"),
}

Request = Callable[[World, dict[str, str], str, str, dict[str, Any]], Any]


def _read(w, h, t, i, body):
    return w.client.get(f"/fhir/{t}/{i}", headers=h)


def _read_raw(w, h, t, i, body):
    return w.client.get(f"/fhir/{t}/{i}", headers={**h, "accept": "*/*"})


def _vread(w, h, t, i, body):
    return w.client.get(f"/fhir/{t}/{i}/_history/1", headers=h)


def _history(w, h, t, i, body):
    return w.client.get(f"/fhir/{t}/{i}/_history", headers=h)


def _update(w, h, t, i, body):
    return w.client.put(f"/fhir/{t}/{i}", json={**body, "id": i}, headers=h)


def _update_if_match(w, h, t, i, body):
    return w.client.put(
        f"/fhir/{t}/{i}", json={**body, "id": i}, headers={**h, "if-match": 'W/"1"'}
    )


def _patch_status(w, h, t, i, body):
    ops = [{"op": "replace", "path": "/status", "value": "superseded"}]
    return w.client.patch(f"/fhir/{t}/{i}", json=ops, headers={**h, "content-type": PATCH})


def _patch_probe(w, h, t, i, body):
    # a `test` op is a value oracle if it runs before the policy
    ops = [{"op": "test", "path": "/id", "value": "nothing"}]
    return w.client.patch(f"/fhir/{t}/{i}", json=ops, headers={**h, "content-type": PATCH})


def _patch_copy(w, h, t, i, body):
    ops = [{"op": "copy", "from": "/meta", "path": "/status"}]
    return w.client.patch(f"/fhir/{t}/{i}", json=ops, headers={**h, "content-type": PATCH})


def _conditional_patch(w, h, t, i, body):
    ops = [{"op": "replace", "path": "/status", "value": "superseded"}]
    return w.client.patch(f"/fhir/{t}?_id={i}", json=ops, headers={**h, "content-type": PATCH})


def _fhirpath_patch(w, h, t, i, body):
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": f"{t}.status"},
                    {"name": "value", "valueCode": "superseded"},
                ],
            }
        ],
    }
    headers = {**h, "content-type": "application/fhir+json"}
    return w.client.patch(f"/fhir/{t}/{i}", json=params, headers=headers)


def _conditional_delete(w, h, t, i, body):
    return w.client.delete(f"/fhir/{t}?_id={i}", headers=h)


def _transaction_patch(w, h, t, i, body):
    ops = base64.b64encode(b'[{"op": "replace", "path": "/status", "value": "superseded"}]')
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Binary", "contentType": PATCH, "data": ops.decode()},
                "request": {"method": "PATCH", "url": f"{t}?_id={i}"},
            }
        ],
    }
    return w.client.post("/fhir", json=bundle, headers=h)


def _batch_get_absolute(w, h, t, i, body):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"http://testserver/fhir/{t}/{i}"}}],
    }
    return w.client.post("/fhir", json=bundle, headers=h)


def _conditional_reference(w, h, t, i, body):
    # a write naming the target by a conditional reference (resolved through the Gate)
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"{t}?_id={i}"},
    }
    return w.client.post("/fhir/Consent", json=consent, headers=h)


def _delete(w, h, t, i, body):
    return w.client.delete(f"/fhir/{t}/{i}", headers=h)


def _search_id(w, h, t, i, body):
    return w.client.get(f"/fhir/{t}", params={"_id": i}, headers=h)


def _search_in_record(w, h, t, i, body):
    params = {"patient": w.victim, "_id": i, "_total": "accurate"}
    if t == "Patient":  # a record is looked up by itself
        params.pop("patient")
    if t == "DocumentReference":
        params["status"] = "current"
    return w.client.get(f"/fhir/{t}", params=params, headers=h)


def _count_in_record(w, h, t, i, body):
    params = {"patient": w.victim, "_id": i, "_summary": "count"}
    if t == "Patient":  # a record is looked up by itself
        params.pop("patient")
    if t == "DocumentReference":
        params["status"] = "current"
    return w.client.get(f"/fhir/{t}", params=params, headers=h)


def _batch_get(w, h, t, i, body):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"{t}/{i}"}}],
    }
    return w.client.post("/fhir", json=bundle, headers=h)


def _transaction_put(w, h, t, i, body):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"http://testserver/fhir/{t}/{i}",
                "resource": {**body, "id": i},
                "request": {"method": "PUT", "url": f"{t}/{i}"},
            }
        ],
    }
    return w.client.post("/fhir", json=bundle, headers=h)


def _transaction_delete(w, h, t, i, body):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": f"{t}/{i}"}}],
    }
    return w.client.post("/fhir", json=bundle, headers=h)


INTERACTIONS: dict[str, Request] = {
    "read": _read,
    "read-raw": _read_raw,
    "vread": _vread,
    "history": _history,
    "update": _update,
    "update-if-match": _update_if_match,
    "patch": _patch_status,
    "patch-test": _patch_probe,
    "patch-copy": _patch_copy,
    "conditional-patch": _conditional_patch,
    "fhirpath-patch": _fhirpath_patch,
    "conditional-delete": _conditional_delete,
    "transaction-patch": _transaction_patch,
    "batch-get-absolute": _batch_get_absolute,
    "conditional-reference": _conditional_reference,
    "delete": _delete,
    "search-id": _search_id,
    "search-in-record": _search_in_record,
    "count-in-record": _count_in_record,
    "batch-get": _batch_get,
    "transaction-put": _transaction_put,
    "transaction-delete": _transaction_delete,
}
# a client that sends a stored value (a PUT body) gets it back in a validation message as
# easily for an absent id: only answers to requests that carry no stored value are searched
# for leaks
CARRIES_BODY = {"update", "update-if-match", "transaction-put"}


def _targets(world: World) -> dict[str, tuple[str, str, dict[str, Any], list[str]]]:
    """name -> (type, id, a body for writes, the stored values to keep secret)."""
    c, treating, holder = world.client, world.as_("treating"), world.as_("holder")
    out: dict[str, tuple[str, str, dict[str, Any], list[str]]] = {}
    for name in ("plain", "masked", "embargoed"):
        doc = getattr(world, name)
        body = c.get(f"/fhir/DocumentReference/{doc.id}", headers=treating).json()
        out[name] = ("DocumentReference", doc.id, body, doc.secrets())
        binary = c.get(
            f"/fhir/Binary/{doc.binary}", headers={**treating, "accept": "application/fhir+json"}
        ).json()
        out[f"{name}-binary"] = (
            "Binary",
            doc.binary,
            binary,
            [doc.binary, binary["data"][400:440]],
        )
    for name in ("block", "opposition"):
        cid = getattr(world, name)
        body = c.get(f"/fhir/Consent/{cid}", headers=holder).json()
        out[name] = ("Consent", cid, body, [cid])
    record = c.get(f"/fhir/Patient/{world.victim}", headers=holder).json()
    out["record"] = ("Patient", world.victim, record, [world.victim, "PAT-TROIS"])
    trail = c.get(
        "/fhir/AuditEvent", params={"patient": world.victim, "_count": 1}, headers=holder
    ).json()
    event = trail["entry"][0]["resource"]
    out["audit-event"] = ("AuditEvent", event["id"], event, [event["id"]])
    return out


def _filed_by(actor: str, name: str) -> bool:
    # the author and the filing establishment know what they filed: not part of this walk
    return actor in ("author", "hospital-system")


@pytest.mark.parametrize("actor", ACTORS)
def test_hidden_and_absent_answer_alike(world, actor):
    headers = world.as_(actor)
    targets = _targets(world)
    hidden = [
        name
        for name, (rtype, rid, _, _) in targets.items()
        if not _filed_by(actor, name)
        and world.client.get(f"/fhir/{rtype}/{rid}", headers=headers).status_code != 200
    ]
    assert hidden, f"{actor} may read the whole record"
    for pair in MUST_MEET:
        if pair[0] == actor:
            assert pair[1] in hidden, f"{actor} reads {pair[1]}"
    failures: list[str] = []
    for name in hidden:
        rtype, rid, body, secrets = targets[name]
        for interaction, request in INTERACTIONS.items():
            got = request(world, headers, rtype, rid, body)
            absent = request(world, headers, rtype, UNKNOWN, body)
            try:
                same_answer(got, absent, rid)
            except AssertionError:
                failures.append(
                    f"{interaction} {name}: {got.status_code} {got.text[:160]!r} "
                    f"vs absent {absent.status_code} {absent.text[:160]!r}"
                )
                continue
            if interaction not in CARRIES_BODY and (found := leaks(got, secrets[1:])):
                failures.append(f"{interaction} {name}: leaks {found}")
    assert not failures, "\n".join(failures)
    # nothing the walk asked for changed anything
    current = _targets(world)
    for name in hidden:
        assert current[name][2].get("meta", {}).get("versionId") == targets[name][2].get(
            "meta", {}
        ).get("versionId"), f"{name} changed"
