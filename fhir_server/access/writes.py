"""The writes half of the Gate (`access/gate.py`): the stored version a write changes,
shown only to an actor who may see it, and the judgement of the write on the stored and
the new state, with the audit and notifications to commit with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fhir_server import errors
from fhir_server.access import answers, notices
from fhir_server.access.audit import TRUSTED, audit_write
from fhir_server.access.records import Record, new_record
from fhir_server.access.targets import load_target
from fhir_server.fhir.compartment import binary_document, patient_of
from fhir_server.fhir.validation import check_id
from fhir_server.policy import Action, Decision, DocumentFacts
from fhir_server.policy.elements import check_change, creation_actions
from fhir_server.policy.facts import document_facts
from fhir_server.policy.tables import interaction_action
from fhir_server.storage.port import Stored, Write

if TYPE_CHECKING:
    from fhir_server.access.gate import Gate


class GateWrites:
    async def stored_for_write(
        self: Gate, rtype: str, id: str, interaction: str, *, action: Action | None = None
    ) -> Stored | None:
        """The current version a write will change (possibly a deletion), once the actor
        is shown to see the resource; an unknown id and one they may not see answer alike.
        Under the policy a client never chooses a new resource's id (no update-as-create):
        a PUT to an unknown id is that same answer. Trusted use (auth=none) gets None for
        an unknown id (update-as-create)."""
        check_id(id)
        target = await load_target(self._store, rtype, id)
        wanted = action or interaction_action(rtype, interaction)
        audit = {"interaction": interaction}
        if self.trusted:
            return target.stored
        assert wanted is not None
        refusal = self.request_refusal(wanted)
        if refusal is not None:
            raise await self.refuse(refusal, patient_id=target.patient_id, ref=target.ref, **audit)
        if target.stored is None or not target.exists:
            unknown = Decision.hide("unknown", "no such resource")
            raise await self.refuse(unknown, patient_id=None, ref=target.ref, **audit)
        record = await self.record(target.patient_id) if target.patient_id else None
        if record is None or not self.sees(rtype, record, target.document):
            decision = Decision.hide("not-visible", "no such resource")
            if record is not None:
                decision = answers.hidden_as(self.decide(wanted, record, target.document))
            raise await self.refuse(decision, patient_id=target.patient_id, ref=target.ref, **audit)
        return target.stored

    async def judge(
        self: Gate,
        interaction: str,
        rtype: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        ref: str,
        *,
        transaction: str | None = None,
        action: Action | None = None,
    ) -> list[Write]:
        """Judge a create / update / patch / delete on the stored state (`before`) and the
        new one (`after`); return the audit and notification Writes to commit with it.
        `before` must come from `stored_for_write` (the actor may see it)."""
        audit = {"interaction": interaction, "resource": ref, "transaction": transaction}
        actions = self._actions(interaction, rtype, before, after, action)
        target = after if after is not None else before
        patient_id = await self._owner(rtype, target)
        if self.trusted:
            return [audit_write(self.ctx, TRUSTED, status=200, patient_id=patient_id, **audit)]
        for wanted in actions:
            if (refusal := self.request_refusal(wanted)) is not None:
                raise await self.refuse(refusal, patient_id=patient_id, ref=ref, **_only(audit))
        if patient_id is None:
            return await self._unattached_write(rtype, after, audit)
        creating = rtype == "Patient" and before is None
        record = new_record(patient_id) if creating else await self.record(patient_id)
        states = self._states(rtype, record, before, after)
        decision = TRUSTED
        for wanted in actions:
            for state, doc in states:
                decision = self.decide(wanted, state, doc)
                if not decision.permit:
                    raise await self.refuse(
                        decision, patient_id=patient_id, ref=ref, **_only(audit)
                    )
        writes = [audit_write(self.ctx, decision, status=200, patient_id=patient_id, **audit)]
        if rtype == "DocumentReference" and before is None and after is not None:
            writes += notices.filing_notifications(self.ctx, patient_id, after, ref, states[-1][1])
        if creating:
            writes.append(notices.record_created(self.ctx, patient_id))
            # the rest of this request (a transaction's other entries) sees the record open
            self.ctx.cache.records[patient_id] = record
        return writes

    def _actions(
        self: Gate,
        interaction: str,
        rtype: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        action: Action | None,
    ) -> list[Action]:
        if action is not None:  # a server operation ($close, supersede) made the change
            return [action]
        base = interaction_action(rtype, interaction)
        if base is None:
            raise errors.method_not_allowed(f"{interaction} is not allowed on {rtype}")
        if before is not None and after is not None:
            return check_change(rtype, before, after) or [base]  # refusals for everyone first
        if before is not None:
            return [base]
        return [base, *creation_actions(rtype, after or {})]

    def _states(
        self: Gate,
        rtype: str,
        record: Record,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> list[tuple[Record, DocumentFacts | None]]:
        """The record and document facts a write is judged on: the stored state, and the
        new one."""
        now = self.ctx.clock()
        out: list[tuple[Record, DocumentFacts | None]] = []
        for resource in (before, after):
            if resource is None:
                continue
            state, doc = record, None
            if rtype == "DocumentReference":
                doc = document_facts(resource)
            elif rtype == "Patient" and before is not None:
                state = record.with_patient(resource, now)
            elif rtype == "Consent":
                state = record.with_consent(resource, now)
            out.append((state, doc))
        return out

    async def _owner(self: Gate, rtype: str, resource: Mapping[str, Any] | None) -> str | None:
        """The record a write lands in. A Binary's is its document's; content is tied to
        a document only as that document is filed (in the same commit), never to one
        already stored, whose content never changes."""
        if rtype != "Binary":
            return patient_of(rtype, resource)
        doc_id = binary_document(resource)
        if doc_id is not None and await self._store.read("DocumentReference", doc_id):
            raise errors.unprocessable(
                "Binary.securityContext names a document already filed: a document's "
                "content is given when the document is filed and never changes",
                "Binary.securityContext",
            )
        return None

    async def _unattached_write(
        self: Gate, rtype: str, after: Mapping[str, Any] | None, audit: dict[str, Any]
    ) -> list[Write]:
        """A write that names no record: only a document's content, posted with or before
        its DocumentReference (reading it follows that document, so holding it grants
        nothing)."""
        if rtype == "Binary" and after is not None:
            allow = Decision.allow("filing", "document content")
            return [audit_write(self.ctx, allow, status=201, patient_id=None, **audit)]
        raise errors.unprocessable(
            f"A {rtype} must belong to a patient's record (Patient/id reference)"
        )


def _only(audit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in audit.items() if k != "resource"}
