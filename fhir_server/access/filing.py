"""The Gate's lookups for the filing routes ($import-cda, ITI-65, ITI-105, POST
DocumentReference): which record an INS opens, whether a uniqueId is filed, which document
a replacement supersedes. Their results route the filing, which is then judged like any
write; they never reach a response unless the policy discloses them (`refiled`), and
their errors name nothing the actor did not send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fhir_server import errors
from fhir_server.access import answers
from fhir_server.access.audit import TRUSTED, audit_write
from fhir_server.access.targets import load_target
from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.compartment import patient_of
from fhir_server.fhir.uniqueness import document_key, ins_key
from fhir_server.policy import Action, Decision
from fhir_server.policy.facts import document_facts
from fhir_server.policy.tables import refiling_disclosed
from fhir_server.storage.port import Stored

if TYPE_CHECKING:
    from fhir_server.access.gate import Gate

WAIT_STEPS = 50
WAIT_SECONDS = 0.01
# the issue code a refusal for an unknown replaced document carries, so a client can retry
UNKNOWN_PARENT_CODE = "not-found"
RELATES_TO = "DocumentReference.relatesTo"


async def patient_holding(gate: Gate, system: str, value: str) -> str | None:
    """The id of the Patient holding this INS, or None. A key can be reserved by a filing
    still writing its Patient (stores without transactions reserve keys first): wait for
    the Patient to appear rather than point a document at a Patient not yet written."""
    key = ins_key(system, value)
    store = gate._store
    for _ in range(WAIT_STEPS):
        holder = await store.holder_of(key)
        if holder is None:
            return None
        stored = await store.read(*holder)
        if stored is not None and not stored.deleted:
            # the record's policy reads this Patient next (`records.load_record`)
            gate.ctx.cache.patients[holder[1]] = stored
            return holder[1]
        await asyncio.sleep(WAIT_SECONDS)
    raise errors.conflict("The record of this INS is being created concurrently; retry")


async def filed(gate: Gate, master: Mapping[str, Any]) -> Stored | None:
    """The live DocumentReference holding this uniqueId (masterIdentifier), if any."""
    if not master.get("value"):
        return None
    holder = await gate._store.holder_of(document_key(dict(master)))
    if holder is None:
        return None
    stored = await gate._store.read(*holder)
    return stored if stored is not None and not stored.deleted else None


def already_filed() -> FhirError:
    return errors.conflict(
        "A document with this uniqueId is already filed with other content (a uniqueId "
        "names one document): give the new document a uniqueId of its own",
        code="duplicate",
    )


async def refiled(gate: Gate, stored: Stored, same_bytes: bool | None) -> Stored:
    """The answer to a document sent again under a filed uniqueId (`tables.refiling_
    disclosed`): the filed DocumentReference, or a 409 that names nothing. Audited in the
    filed document's record either way."""
    doc = stored.resource or {}
    pid = patient_of("DocumentReference", doc)
    ref = f"DocumentReference/{stored.id}"
    audit = {"interaction": "create", "resource": ref}
    if gate.trusted:
        await gate.commit([audit_write(gate.ctx, TRUSTED, status=200, patient_id=pid, **audit)])
        return stored
    actor = gate.ctx.actor
    assert actor is not None
    record = await gate.record(pid) if pid else None
    may_read = record is not None and gate.decide(Action.READ, record, document_facts(doc)).permit
    if refiling_disclosed(actor.role, same_bytes, may_read):
        allow = Decision.allow("refiling", "the same document sent again")
        await gate.commit([audit_write(gate.ctx, allow, status=200, patient_id=pid, **audit)])
        return stored
    taken = Decision.deny("uniqueid-taken", "a document with this uniqueId is already filed")
    await gate.commit([audit_write(gate.ctx, taken, status=409, patient_id=pid, **audit)])
    raise already_filed()


def unknown_parent(name: str) -> FhirError:
    return FhirError(
        422,
        [
            Issue(
                UNKNOWN_PARENT_CODE,
                f"The document replaces {name!r}, which is not filed on this server: file the "
                "replaced document first",
                expression=(RELATES_TO,),
            )
        ],
    )


async def replaced(gate: Gate, target: Mapping[str, Any], patient_ref: str | None) -> Stored:
    """The current DocumentReference a replacement supersedes. Replacing is the policy's
    `update` of it (its author, filing establishment or own deposit): a document the actor
    may not see is answered as one this server does not hold."""
    ident = target.get("identifier")
    ref = str(target.get("reference") or "")
    if ident:
        name = str(ident.get("value"))
        stored = await filed(gate, ident)
        doc_id = stored.id if stored is not None else None
    elif ref.startswith("DocumentReference/"):
        name, doc_id = ref, ref.split("/", 1)[1]
    else:
        raise errors.unprocessable(
            "relatesTo replaces needs a target identifier or DocumentReference/id", RELATES_TO
        )
    if doc_id is None:
        raise unknown_parent(name)
    found = await load_target(gate._store, "DocumentReference", doc_id)
    if not found.exists or found.stored is None or found.stored.deleted:
        raise unknown_parent(name)
    if not gate.trusted:
        assert found.patient_id is not None
        record = await gate.record(found.patient_id)
        decision = gate.decide(Action.UPDATE, record, found.document)
        if not decision.permit:
            visible = gate.sees("DocumentReference", record, found.document)
            await gate.refuse(
                decision if visible else answers.hidden_as(decision),
                patient_id=found.patient_id,
                ref=found.ref,
                interaction="update",
            )
            raise unknown_parent(name) if not visible else answers.refusal(decision, found.ref)
    res = found.stored.resource or {}
    if res.get("status") != "current":
        raise errors.unprocessable(
            f"The replaced document {name!r} is already {res.get('status')}: only a current "
            "document can be replaced",
            RELATES_TO,
        )
    if patient_ref and (res.get("subject") or {}).get("reference") != patient_ref:
        raise errors.unprocessable(
            f"The replaced document {name!r} belongs to another record: a replacement keeps "
            "the patient",
            RELATES_TO,
        )
    return found.stored


async def holder(gate: Gate, key: str) -> str | None:
    """The id of the live resource holding a unique key (a submission set's uniqueId)."""
    found = await gate._store.holder_of(key)
    return found[1] if found is not None else None


async def content_of(gate: Gate, document: Stored, binary_id: str) -> Stored | None:
    """A Binary the document `refiled` disclosed names as its content, answered with it."""
    urls = {
        str((c.get("attachment") or {}).get("url") or "")
        for c in (document.resource or {}).get("content") or []
    }
    if f"Binary/{binary_id}" not in urls:
        return None
    stored = await gate._store.read("Binary", binary_id)
    return stored if stored is not None and not stored.deleted else None
