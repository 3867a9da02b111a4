"""The Gate: the one enforcement point between the interactions and the store.

Every method decides before it returns, compares or echoes anything stored:

1. the request alone (`policy.request_refusal`: role, access mode, justification, what
   the role can ever do) is judged first, so its answer never depends on what exists;
2. the target is loaded with what governs it (`targets.load_target`);
3. an actor who may not see it gets, word for word, the answer to an unknown id;
4. the decision itself; writes are judged on the stored and the new state
   (`policy.elements.check_change`, then `decide` on both).

Each decision, permit or refusal, is audited in the record it concerns: a permitted read
before the data is returned, a permitted write in the same commit as the change, a
refusal before it is raised. With authentication off (`auth=none`) no policy applies,
the element rules (compartment, immutable, server-set) still do, and everything is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fhir_server import errors
from fhir_server.access import answers, notices
from fhir_server.access.audit import TRUSTED, audit_write
from fhir_server.access.derived import following
from fhir_server.access.records import Record, load_record
from fhir_server.access.targets import Target, load_target
from fhir_server.access.writes import GateWrites
from fhir_server.auth.actor import Role
from fhir_server.errors import FhirError
from fhir_server.fhir.numbers import whole_number
from fhir_server.fhir.validation import check_id
from fhir_server.policy import Action, Decision, DocumentFacts, decide
from fhir_server.policy.decide import authorisation_status, decider, request_refusal, sees
from fhir_server.policy.tables import READ_ACTION
from fhir_server.storage.port import HistoryPage, Stored, UniqueViolation, Write

if TYPE_CHECKING:
    from fhir_server.interactions.context import Context

AUDITOR_READS = frozenset({Action.READ, Action.READ_AUDIT, Action.SEARCH})


class Gate(GateWrites):
    """Reads, searches and decisions here; the writes half in `access/writes.py`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._store = ctx.store

    # -- decisions ---------------------------------------------------------------------

    @property
    def trusted(self) -> bool:
        return self.ctx.actor is None

    async def record(self, patient_id: str) -> Record:
        return await load_record(self._store, self.ctx.cache, patient_id, self.ctx.clock())

    def decide(self, action: Action, record: Record, doc: DocumentFacts | None = None) -> Decision:
        if self.trusted:
            return TRUSTED
        assert self.ctx.actor is not None
        ctx = self.ctx
        return decide(
            ctx.actor, ctx.access, action, record.facts, record.consents, ctx.clock(), doc
        )

    def decider(self, action: Action, record: Record) -> Callable[[DocumentFacts | None], Decision]:
        """`decide` on this record for one document after another (a page of results)."""
        if self.trusted:
            return lambda _doc: TRUSTED
        assert self.ctx.actor is not None
        ctx = self.ctx
        return decider(ctx.actor, ctx.access, action, record.facts, record.consents, ctx.clock())

    def sees(self, rtype: str, record: Record, doc: DocumentFacts | None) -> bool:
        if self.trusted:
            return True
        assert self.ctx.actor is not None
        ctx, action = self.ctx, READ_ACTION.get(rtype, Action.READ)
        return sees(ctx.actor, ctx.access, action, record.facts, record.consents, ctx.clock(), doc)

    def request_refusal(self, action: Action | None) -> Decision | None:
        if self.trusted or action is None:
            return None
        assert self.ctx.actor is not None
        return request_refusal(self.ctx.actor, self.ctx.access, action)

    async def refuse(
        self, decision: Decision, *, patient_id: str | None, ref: str | None, **audit: Any
    ) -> FhirError:
        """Audit a refusal in the record it concerns, then return the error to raise."""
        await self.commit(
            [
                audit_write(
                    self.ctx,
                    decision,
                    status=answers.refusal(decision, ref).status,
                    patient_id=patient_id,
                    resource=ref,
                    **audit,
                )
            ]
        )
        return answers.refusal(decision, ref)

    async def commit(self, writes: Sequence[Write]) -> list[Stored]:
        """One atomic commit; a document's structured content follows its changes in it
        (`access.derived`). Returns what `writes` stored, in their order."""
        follow = await following(self._store, writes)
        if not follow:
            return await self._store.commit(writes)
        stored = await self._store.commit([*writes, *follow])
        return stored[: len(writes)]

    # -- one resource --------------------------------------------------------------------

    async def _check(
        self, action: Action, target: Target, ref: str, **audit: Any
    ) -> tuple[Record | None, Decision]:
        """Decide `action` on a stored resource; refusals are audited and raised, and an
        actor who may not see the resource is answered as for an unknown id."""
        refusal = self.request_refusal(action)
        if refusal is not None:
            raise await self.refuse(refusal, patient_id=target.patient_id, ref=ref, **audit)
        if not target.exists:
            unknown = Decision.hide("unknown", "no such resource")
            raise await self.refuse(unknown, patient_id=None, ref=ref, **audit)
        if self.trusted:
            return None, TRUSTED
        assert self.ctx.actor is not None
        if target.patient_id is None:  # content no document holds: the auditor's only
            if self.ctx.actor.role == Role.AUDITOR and action in AUDITOR_READS:
                return None, Decision.allow("auditor", "resource attached to no record")
            unattached = Decision.hide("unattached", "not attached to a record")
            raise await self.refuse(unattached, patient_id=None, ref=ref, **audit)
        record = await self.record(target.patient_id)
        decision = self.decide(action, record, target.document)
        if decision.permit and self._trail_hides(target, record):
            decision = Decision.hide("trail-names-hidden-document", "no such resource")
        if decision.permit:
            return record, decision
        if not self.sees(target.rtype, record, target.document) or self._trail_hides(
            target, record
        ):
            decision = answers.hidden_as(decision)
        raise await self.refuse(decision, patient_id=target.patient_id, ref=ref, **audit)

    def _trail_hides(self, target: Target, record: Record) -> bool:
        """An AuditEvent or notice naming a document hidden from this reader is hidden too."""
        if target.rtype not in ("AuditEvent", "Communication") or target.document is None:
            return False
        from fhir_server.access.searches import hides_documents

        hidden = hides_documents(self, record)
        return hidden is not None and hidden.admits(target.document)

    async def read(self, rtype: str, id: str, *, interaction: str = "read") -> Stored:
        """read: the current version, once the policy permits (410 for a deletion the
        actor may see)."""
        check_id(id)
        target = await load_target(self._store, rtype, id)
        ref = target.ref
        audit = {"interaction": interaction, "transaction": _transaction(rtype)}
        record, decision = await self._check(READ_ACTION[rtype], target, ref, **audit)
        await self.commit_read(decision, record, resource=ref, **audit)
        assert target.stored is not None
        if target.stored.deleted:
            raise errors.gone(f"{ref} was deleted (version {target.stored.version})")
        return target.stored

    async def vread(self, rtype: str, id: str, version: str) -> Stored:
        check_id(id)
        target = await load_target(self._store, rtype, id)
        ref = f"{rtype}/{id}/_history/{version}"
        audit = {"interaction": "vread", "transaction": _transaction(rtype)}
        record, decision = await self._check(READ_ACTION[rtype], target, ref, **audit)
        await self.commit_read(decision, record, resource=ref, **audit)
        number = whole_number(version)
        stored = await self._store.vread(rtype, id, number) if number is not None else None
        if stored is None:
            raise errors.not_found(f"{rtype}/{id} has no version {version}")
        if stored.deleted:
            raise errors.gone(f"{rtype}/{id} version {version} is a deletion")
        return stored

    async def history(
        self, rtype: str, id: str, *, count: int, cursor: str | None, since: str | None
    ) -> HistoryPage:
        check_id(id)
        target = await load_target(self._store, rtype, id)
        ref = f"{rtype}/{id}/_history"
        audit = {"interaction": "history-instance"}
        record, decision = await self._check(READ_ACTION[rtype], target, ref, **audit)
        await self.commit_read(decision, record, resource=ref, **audit)
        return await self._store_history(rtype, id, count=count, cursor=cursor, since=since)

    async def type_history(
        self, rtype: str, *, count: int, cursor: str | None, since: str | None
    ) -> HistoryPage:
        """A type's history crosses every record: for the auditor only (**decision**)."""
        ref = f"{rtype}/_history"
        audit = {"interaction": "history-type"}
        actor = self.ctx.actor
        if not self.trusted and (actor is None or actor.role != Role.AUDITOR):
            refusal = Decision.deny(
                "type-history", "the history of a whole type is for the auditor only"
            )
            raise await self.refuse(refusal, patient_id=None, ref=ref, **audit)
        allow = TRUSTED if self.trusted else Decision.allow("auditor", "type history")
        await self.commit_read(allow, None, resource=ref, **audit)
        return await self._store_history(rtype, None, count=count, cursor=cursor, since=since)

    async def _store_history(self, rtype: str, id: str | None, **page: Any) -> HistoryPage:
        try:
            return await self._store.history(rtype, id, **page)
        except ValueError:
            raise errors.bad_request("Invalid paging cursor", "_cursor") from None

    async def authorisation(self, patient_id: str) -> Decision:
        """The calling professional's own authorisation status for the record (TD0.2),
        told only to who may see the Patient: a blocked professional, or any actor for a
        record opposed or unknown, gets the answer of an unknown id. Audited, without the
        first-consultation notice: nothing of the record's content is read."""
        check_id(patient_id)
        target = await load_target(self._store, "Patient", patient_id)
        ref = f"Patient/{patient_id}/$authorisation"
        action = Action.READ_AUTHORISATION
        record, _ = await self._check(action, target, ref, interaction="operation")
        if record is None or self.ctx.actor is None:
            raise errors.bad_request("$authorisation answers for the professional of the token")
        status = authorisation_status(
            self.ctx.actor, record.facts, record.consents, self.ctx.clock()
        )
        await self.commit(
            [
                audit_write(
                    self.ctx,
                    status,
                    interaction="operation",
                    status=200,
                    patient_id=patient_id,
                    resource=ref,
                )
            ]
        )
        return status

    async def commit_read(self, decision: Decision, record: Record | None, **audit: Any) -> None:
        """The audit of a permitted read (and its notifications), durable before the answer."""
        pid = record.facts.id if record else None
        writes = [audit_write(self.ctx, decision, status=200, patient_id=pid, **audit)]
        if record is not None and not self.trusted:
            actor = self.ctx.actor
            first = bool(actor and actor.rpps) and (
                await self._store.holder_of(
                    notices.first_consultation_key(pid or "", actor.rpps or "")
                )
                is None
            )
            writes += notices.read_notifications(self.ctx, record, first)
        try:
            await self.commit(writes)
        except UniqueViolation:
            if len(writes) == 1:
                raise
            # a racing first-consultation notice won the key: the audit alone still goes in
            await self.commit(writes[:1])


def _transaction(rtype: str) -> str | None:
    return "ITI-68" if rtype == "Binary" else None
