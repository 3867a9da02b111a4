"""`dmp-fhir housekeeping`: the record's clock. Sends the notices that fall due (an
INVISIBLE_PATIENT document two weeks after filing: it becomes visible by itself at one
month, which the policy computes at read time) and destroys records closed for more than
ten years (R.1111-34), keeping in the audit trail only the fact of the destruction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fhir_server.access.audit import audit_write
from fhir_server.access.notices import notification_write
from fhir_server.access.targets import binary_owner, last_live
from fhir_server.audit import notifications as notify
from fhir_server.fhir.compartment import patient_of
from fhir_server.fhir.derived import DERIVED_TYPES
from fhir_server.interactions.context import Context
from fhir_server.policy import INVISIBLE_PATIENT, Decision, embargo_cutoff
from fhir_server.policy.facts import closed_at, document_facts
from fhir_server.storage.port import Stored, UniqueViolation

RETENTION = timedelta(days=3653)  # ten years after closure, leap days included
NOTICE_AFTER = timedelta(days=14)  # R.1111-53: the patient is told after two weeks
# what a record's destruction removes, Binaries first (found through their
# DocumentReference); AuditEvents stay: they are the trace
# a document's structured content goes with it (its owner is its `subject` / `patient`)
DESTRUCTION_ORDER = (
    "Binary",
    *DERIVED_TYPES,
    "DocumentReference",
    "Consent",
    "List",
    "Communication",
)


@dataclass
class HousekeepingReport:
    notices: int = 0
    destroyed: list[str] = field(default_factory=list)


async def _scan(ctx: Context, rtype: str, *, include_deleted: bool = False):
    after = None
    while True:
        batch, after = await ctx.store.scan(rtype, after=after, include_deleted=include_deleted)
        for stored in batch:
            yield stored
        if after is None:
            return


async def embargo_notices(ctx: Context, now: datetime) -> int:
    sent = 0
    async for stored in _scan(ctx, "DocumentReference"):
        doc = stored.resource or {}
        facts = document_facts(doc)
        if INVISIBLE_PATIENT not in facts.labels or facts.filed_at is None:
            continue
        if not (embargo_cutoff(now) < facts.filed_at <= now - NOTICE_AFTER):
            continue
        patient_id = patient_of("DocumentReference", doc)
        if patient_id is None:
            continue
        visible_from = facts.filed_at + (now - embargo_cutoff(now))
        comm = notify.embargo_lapsing(
            patient_id, now, f"DocumentReference/{stored.id}", visible_from
        )
        write = notification_write(ctx, comm, f"Communication.embargo-lapsing|{stored.id}")
        try:
            await ctx.store.commit([write])
            sent += 1
        except UniqueViolation:
            continue  # already sent
    return sent


async def _belongs(ctx: Context, rtype: str, patient_id: str) -> list[Stored]:
    """Every resource of the record, deleted ones included (their history holds data),
    each judged by its last live version; a Binary by its document's."""
    found = []
    async for stored in _scan(ctx, rtype, include_deleted=True):
        owner = patient_of(rtype, await last_live(ctx.store, stored))
        if rtype == "Binary":
            doc_id = await binary_owner(ctx.store, stored)
            doc = await ctx.store.read("DocumentReference", doc_id) if doc_id else None
            owner = patient_of("DocumentReference", await last_live(ctx.store, doc))
        if owner == patient_id:
            found.append(stored)
    return found


async def destroy_expired(ctx: Context, now: datetime) -> list[str]:
    destroyed = []
    async for stored in _scan(ctx, "Patient"):
        closed = closed_at(stored.resource or {})
        if closed is None or closed + RETENTION > now:
            continue
        for rtype in DESTRUCTION_ORDER:
            for res in await _belongs(ctx, rtype, stored.id):
                await ctx.store.purge(rtype, res.id)
        await ctx.store.purge("Patient", stored.id)
        fact = Decision.allow(
            "retention-expired", f"record closed on {closed.date()} destroyed after ten years"
        )
        await ctx.store.commit(
            [
                audit_write(
                    ctx,
                    fact,
                    interaction="delete",
                    status=200,
                    patient_id=stored.id,
                    resource=f"Patient/{stored.id}",
                )
            ]
        )
        destroyed.append(stored.id)
    return destroyed


async def housekeeping(ctx: Context) -> HousekeepingReport:
    now = ctx.clock()
    return HousekeepingReport(await embargo_notices(ctx, now), await destroy_expired(ctx, now))
