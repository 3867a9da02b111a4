"""Writes are judged on both states: for random updates and patches of every type by every
kind of actor, a write the server accepts is one the policy allows on the stored state and
on the new one, and a write it refuses changes nothing.

The oracle reads the stored versions straight from the store and asks the pure policy
(`decide`) about each action the change amounts to, on the record and document as they
were and as they are; the invariants that hold for everyone (nothing changes record, a
document's content never changes, server-set elements stay the server's) are checked on
the stored result.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.access.records import RequestCache, load_record
from fhir_server.auth.actor import AccessContext, AccessMode, Actor
from fhir_server.errors import FhirError
from fhir_server.fhir.compartment import patient_of
from fhir_server.fhir.extensions import CLOSED_AT_URL, FILED_AT_URL, IS_ARCHIVED_URL
from fhir_server.policy import decide
from fhir_server.policy.elements import check_change
from fhir_server.policy.facts import document_facts
from fhir_server.policy.model import MASQUE_PS, VISIBILITY_SYSTEM, Action
from fhir_server.policy.tables import interaction_action
from tests.security.world import (
    ATTACKER,
    AUTHOR,
    AUTHORISED,
    BLOCKED,
    HOSPITAL,
    OTHER_ORG,
    PATCH,
    RPPS,
    TREATING,
    World,
)

pytestmark = pytest.mark.store_kinds("sqlite", "mongo")


def _actors(world: World) -> dict[str, tuple[Actor, AccessContext]]:
    normal = AccessContext()
    glass = AccessContext(AccessMode.BRIS_DE_GLACE, "patient inconscient")
    return {
        "treating": (Actor("practitioner", f"practitioner-{TREATING}", rpps=TREATING), normal),
        "author": (
            Actor("practitioner", f"practitioner-{AUTHOR}", rpps=AUTHOR, organization=HOSPITAL),
            normal,
        ),
        "authorised": (
            Actor("practitioner", f"practitioner-{AUTHORISED}", rpps=AUTHORISED),
            normal,
        ),
        "blocked": (Actor("practitioner", f"practitioner-{BLOCKED}", rpps=BLOCKED), normal),
        "attacker": (Actor("practitioner", f"practitioner-{ATTACKER}", rpps=ATTACKER), normal),
        "holder": (Actor("patient", f"patient-{world.victim}", patient=world.victim), normal),
        "legal-rep": (
            Actor(
                "legal-representative", f"legal-representative-{world.victim}", patient=world.victim
            ),
            normal,
        ),
        "insurer": (Actor("assurance-maladie", "assurance-maladie-x"), normal),
        "other-staff": (Actor("admin-staff", "admin-staff-x", organization=OTHER_ORG), normal),
        "other-system": (Actor("system", "system-x", organization=OTHER_ORG), normal),
        "hospital-system": (Actor("system", "system-x", organization=HOSPITAL), normal),
        "glass": (Actor("practitioner", "practitioner-10000000004", rpps="10000000004"), glass),
    }


# -- mutations of a stored body ---------------------------------------------------------


def _label(code: str, system: str = VISIBILITY_SYSTEM) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _document_mutations(world: World) -> list[Any]:
    def status(value):
        return lambda r: {**r, "status": value}

    def add_label(code, system):
        return lambda r: {
            **r,
            "securityLabel": [*(r.get("securityLabel") or []), _label(code, system)],
        }

    def drop_labels(r):
        return {**r, "securityLabel": [r["securityLabel"][0]]} if r.get("securityLabel") else r

    def ext(url, value):
        return lambda r: {**r, "extension": [*(r.get("extension") or []), {"url": url, **value}]}

    return [
        status("superseded"),
        status("entered-in-error"),
        status("current"),
        add_label(MASQUE_PS, VISIBILITY_SYSTEM),
        add_label("INVISIBLE_PATIENT", VISIBILITY_SYSTEM),
        add_label("INVISIBLE_REPRESENTANTS_LEGAUX", VISIBILITY_SYSTEM),
        drop_labels,
        ext(IS_ARCHIVED_URL, {"valueBoolean": True}),
        ext(FILED_AT_URL, {"valueInstant": "2001-01-01T00:00:00Z"}),
        lambda r: {**r, "description": "réécrit"},
        lambda r: {**r, "subject": {"reference": f"Patient/{world.attacker_record}"}},
    ]


def _patient_mutations(world: World) -> list[Any]:
    def gp(rpps):
        return lambda r: {
            **r,
            "generalPractitioner": [{"identifier": {"system": RPPS, "value": rpps}}],
        }

    return [
        gp(ATTACKER),
        gp(TREATING),
        lambda r: {k: v for k, v in r.items() if k != "generalPractitioner"},
        lambda r: {**r, "name": [{"family": "AUTRE", "given": ["Camille"]}]},
        lambda r: {**r, "birthDate": "2020-01-01"},
        lambda r: {**r, "active": False},
        lambda r: {
            **r,
            "extension": [{"url": CLOSED_AT_URL, "valueDateTime": "2001-01-01T00:00:00Z"}],
        },
        lambda r: {**r, "telecom": [{"system": "phone", "value": "0600000000"}]},
    ]


def _consent_mutations(world: World) -> list[Any]:
    def provision(kind):
        return lambda r: {**r, "provision": {**r.get("provision", {}), "type": kind}}

    return [
        provision("permit"),
        provision("deny"),
        lambda r: {**r, "status": "inactive"},
        lambda r: {**r, "patient": {"reference": f"Patient/{world.attacker_record}"}},
        lambda r: {**r, "dateTime": "2001-01-01T00:00:00Z"},
    ]


def _binary_mutations(world: World) -> list[Any]:
    return [
        lambda r: {**r, "data": base64.b64encode(b"overwritten").decode()},
        lambda r: {
            **r,
            "securityContext": {"reference": f"DocumentReference/{world.attacker_doc.id}"},
        },
        lambda r: {k: v for k, v in r.items() if k != "securityContext"},
        lambda r: {**r, "contentType": "text/plain"},
    ]


# -- the oracle -------------------------------------------------------------------------


def _stored(world: World, rtype: str, rid: str):
    store = world.client.app.state.ctx.store
    return world.client.portal.call(store.read, rtype, rid)


def _record(world: World, pid: str):
    store = world.client.app.state.ctx.store
    now = datetime.now(UTC)
    return world.client.portal.call(load_record, store, RequestCache(), pid, now)


def _document_of(world: World, rtype: str, resource: dict[str, Any]):
    if rtype == "DocumentReference":
        return document_facts(resource)
    if rtype == "Binary":
        ref = (resource.get("securityContext") or {}).get("reference", "")
        doc = _stored(world, "DocumentReference", ref.split("/")[-1])
        return document_facts(doc.resource) if doc is not None else None
    return None


def _allowed_on_both(world, actor, access, rtype, before, after) -> list[str]:
    """What is wrong with an accepted write, according to the policy; [] when nothing."""
    try:
        actions = check_change(rtype, before, after) or [interaction_action(rtype, "update")]
    except FhirError as exc:
        return [f"a change refused for everyone went through ({exc.status})"]
    now = datetime.now(UTC)
    pid = patient_of("Binary" if rtype == "Binary" else rtype, before)
    if rtype == "Binary":
        ref = (before.get("securityContext") or {}).get("reference", "")
        doc = _stored(world, "DocumentReference", ref.split("/")[-1])
        pid = patient_of("DocumentReference", doc.resource)
    record = _record(world, pid)
    states = [(record, _document_of(world, rtype, before))]
    if rtype == "Patient":
        states.append((record.with_patient(after, now), None))
    elif rtype == "Consent":
        states.append((record.with_consent(after, now), None))
    else:
        states.append((record, _document_of(world, rtype, after)))
    problems = []
    for action in actions:
        for which, (state, doc) in zip(("stored", "new"), states, strict=True):
            d = decide(actor, access, action, state.facts, state.consents, now, doc)
            if not d.permit:
                problems.append(f"{action} refused on the {which} state ({d.rule})")
    return problems


def _send(world: World, who: str, rtype: str, rid: str, before, after, method: str):
    headers = dict(world.as_(who))
    if method == "PUT":
        return world.client.put(f"/fhir/{rtype}/{rid}", json=after, headers=headers)
    ops = []
    for key in sorted(set(before) | set(after)):
        if key in ("meta", "id", "resourceType") or before.get(key) == after.get(key):
            continue
        if key not in after:
            ops.append({"op": "remove", "path": f"/{key}"})
        else:
            ops.append({"op": "add", "path": f"/{key}", "value": after[key]})
    return world.client.patch(
        f"/fhir/{rtype}/{rid}", json=ops, headers={**headers, "content-type": PATCH}
    )


TARGETS = ("plain", "masked", "embargoed", "record", "block", "opposition", "binary")


def _target(world: World, name: str) -> tuple[str, str]:
    return {
        "plain": ("DocumentReference", world.plain.id),
        "masked": ("DocumentReference", world.masked.id),
        "embargoed": ("DocumentReference", world.embargoed.id),
        "record": ("Patient", world.victim),
        "block": ("Consent", world.block),
        "opposition": ("Consent", world.opposition),
        "binary": ("Binary", world.masked.binary),
    }[name]


MUTATIONS = {
    "DocumentReference": _document_mutations,
    "Patient": _patient_mutations,
    "Consent": _consent_mutations,
    "Binary": _binary_mutations,
}


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_accepted_writes_are_allowed_on_both_states(world, data):
    # every draw comes first: what the store holds (a document deleted by an earlier
    # example) must not change what is drawn, or hypothesis cannot replay an example
    actors = _actors(world)
    who = data.draw(st.sampled_from(sorted(actors)), label="actor")
    actor, access = actors[who]
    rtype, rid = _target(world, data.draw(st.sampled_from(TARGETS), label="target"))
    mutations = MUTATIONS[rtype](world)
    picks = data.draw(
        st.lists(st.integers(0, len(mutations) - 1), min_size=1, max_size=3), label="changes"
    )
    method = data.draw(st.sampled_from(("PUT", "PATCH")), label="method")
    before = _stored(world, rtype, rid)
    if before is None or before.deleted:
        return
    after = copy.deepcopy(before.resource)
    for i in picks:
        after = mutations[i](after)
    r = _send(world, who, rtype, rid, before.resource, after, method)
    stored = _stored(world, rtype, rid)
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/fhir+json"), r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        assert stored.version == before.version, (
            f"{who} {method} refused ({r.status_code}) yet stored"
        )
        return
    assert r.status_code == 200, r.text
    if stored.version == before.version:
        return  # nothing changed (the same content sent back)
    if stored.deleted:
        # a status set to entered-in-error is the author's deletion (PDSm TD3.3c)
        doc = _document_of(world, rtype, before.resource)
        record = _record(world, patient_of(rtype, before.resource))
        d = decide(
            actor, access, Action.DELETE, record.facts, record.consents, datetime.now(UTC), doc
        )
        assert d.permit, f"{who} {method} deleted {rtype} against {d.rule}"
        return
    new = stored.resource
    # what holds for everyone
    assert patient_of(rtype, new) == patient_of(rtype, before.resource), "moved record"
    if rtype == "Binary":
        pytest.fail(f"{who} changed a Binary: {r.text[:200]}")
    problems = _allowed_on_both(world, actor, access, rtype, before.resource, new)
    assert not problems, f"{who} {method} {rtype}: {problems}"
