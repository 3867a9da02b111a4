"""The policy enforcement point: for each interaction, load the facts the DMP policy
reads (the record's Patient and Consents, the document), ask `policy.decide`, and build
the AuditEvent (and notifications) that record the decision.

A permitted write returns its audit Writes so the caller commits them with the change, in
the same atomic step; a permitted read commits its audit before the data is returned; a
refusal is audited, then raised (403, or 404 when the document must not be disclosed).
With authentication off (`auth=none`) no policy applies but everything is still audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fhir_server import errors
from fhir_server.audit import build_audit_event
from fhir_server.audit import notifications as notify
from fhir_server.auth.actor import PROFESSIONAL_ROLES, AccessMode, Role
from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.compartment import binary_document, local_id, patient_of
from fhir_server.interactions.context import Context
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.policy import (
    Action,
    ConsentFacts,
    Decision,
    DocumentFacts,
    PatientFacts,
    decide,
    label_actions,
    parse_consents,
    visibility_filter,
)
from fhir_server.policy.facts import document_facts, patient_facts
from fhir_server.policy.metadata import metadata_actions
from fhir_server.search.plan import PatientIn, SearchPlan
from fhir_server.storage.port import Stored, UniqueViolation, Write

AUDIT_CHAIN = "audit"
# a record holds a handful of Consents; more than this is not a record the policy reads
CONSENTS_MAX = 1000
# roles that may put content into a record (dmp-rules.md, "may write")
FILING_ROLES = frozenset(
    {
        Role.PRACTITIONER,
        Role.SYSTEM,
        Role.ADMIN_STAFF,
        Role.PATIENT,
        Role.LEGAL_REPRESENTATIVE,
        Role.ASSURANCE_MALADIE,
    }
)
TRUSTED = Decision.allow("trusted", "authentication is off (auth=none)")

# (type, interaction) -> the policy action it amounts to
ACTIONS: dict[tuple[str, str], Action] = {
    **{("DocumentReference", i): Action.READ for i in ("read", "vread", "history-instance")},
    ("DocumentReference", "search-type"): Action.SEARCH,
    ("DocumentReference", "create"): Action.FILE,
    ("DocumentReference", "delete"): Action.DELETE,
    **{("Binary", i): Action.READ for i in ("read", "vread", "history-instance")},
    **{("Binary", i): Action.FILE for i in ("create", "update")},
    **{("Patient", i): Action.READ_PATIENT for i in ("read", "vread", "history-instance")},
    ("Patient", "search-type"): Action.SEARCH_PATIENT,
    ("Patient", "create"): Action.CREATE_RECORD,
    ("Patient", "update"): Action.WRITE_PATIENT,
    **{
        ("Consent", i): Action.READ_CONSENT
        for i in ("read", "vread", "history-instance", "search-type")
    },
    **{("Consent", i): Action.WRITE_CONSENT for i in ("create", "update")},
    **{
        ("AuditEvent", i): Action.READ_AUDIT
        for i in ("read", "vread", "history-instance", "search-type")
    },
    **{
        ("Communication", i): Action.READ_AUDIT
        for i in ("read", "vread", "history-instance", "search-type")
    },
    **{("List", i): Action.SEARCH for i in ("read", "vread", "history-instance", "search-type")},
    **{("List", i): Action.FILE for i in ("create", "update")},
}


@dataclass(frozen=True)
class Record:
    """A patient's record as the policy sees it."""

    facts: PatientFacts
    consents: ConsentFacts
    patient: Mapping[str, Any] | None


# -- facts ---------------------------------------------------------------------------------


async def load_record(ctx: Context, patient_id: str) -> Record:
    cache: dict[str, Record] = ctx.extras.setdefault("records", {})
    if patient_id in cache:
        return cache[patient_id]
    # the Patient as this request found it by INS moments ago (`patient_holding`), else read
    stored = ctx.extras.get("patients", {}).get(patient_id)
    if stored is None:
        stored = await ctx.store.read("Patient", patient_id)
    patient = stored.resource if stored is not None and not stored.deleted else None
    result = await ctx.store.search(consents_of(patient_id))
    consents = parse_consents(
        [s.resource for s in result.entries if s.resource], patient_id, ctx.clock()
    )
    record = Record(patient_facts(patient_id, patient, consents), consents, patient)
    cache[patient_id] = record
    return record


def consents_of(patient_id: str) -> SearchPlan:
    """Every Consent of the patient's record (the search `Consent?patient=ID`)."""
    return SearchPlan("Consent", (PatientIn((patient_id,)),), count=CONSENTS_MAX)


def new_record(patient_id: str) -> Record:
    """The record a filing or a Patient creation opens (Mon espace santé: created unless
    opposed; an opposition is a Consent on an existing Patient)."""
    return Record(PatientFacts(patient_id), ConsentFacts(), None)


async def document_of_binary(
    ctx: Context, binary: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    doc_id = binary_document(binary)
    if doc_id is None:
        return None
    stored = await ctx.store.read("DocumentReference", doc_id)
    return stored.resource if stored is not None and not stored.deleted else None


# -- audit ---------------------------------------------------------------------------------


def audit_write(
    ctx: Context,
    decision: Decision,
    *,
    interaction: str,
    status: int,
    patient_id: str | None,
    resource: str | None = None,
    query: str | None = None,
    transaction: str | None = None,
) -> Write:
    event_id = new_id()
    event = build_audit_event(
        interaction=interaction,
        recorded=ctx.clock(),
        status=status,
        rule=decision.rule,
        reason=decision.reason,
        actor=ctx.actor,
        access=ctx.access,
        patient_id=patient_id,
        resource=resource,
        query=query,
        transaction=transaction,
        client_address=ctx.client,
        server=ctx.server,
        event_id=event_id,
    )
    write = make_write("create", "AuditEvent", event_id, event, current=None, now=ctx.now_iso())
    return Write(**{**write.__dict__, "chain": AUDIT_CHAIN})


async def audit_refiling(ctx: Context, stored: Stored) -> None:
    """Record that a filer sent an already filed document again and got it back."""
    decision = Decision.allow("refiling", "the same document (same bytes) sent again")
    patient_id = patient_of("DocumentReference", stored.resource)
    ref = f"DocumentReference/{stored.id}"
    await ctx.store.commit(
        [
            audit_write(
                ctx, decision, interaction="create", status=200, patient_id=patient_id, resource=ref
            )
        ]
    )


async def refuse(ctx: Context, decision: Decision, **audit: Any) -> FhirError:
    """Audit a refusal, then return the error to raise."""
    await ctx.store.commit([audit_write(ctx, decision, status=decision.status, **audit)])
    if decision.hidden or decision.status == 404:
        target = audit.get("resource") or "resource"
        return errors.not_found(f"{target} is not known")
    return FhirError(decision.status, [Issue("forbidden", f"{decision.reason} [{decision.rule}]")])


async def check(
    ctx: Context,
    action: Action,
    record: Record,
    document: DocumentFacts | None = None,
    **audit: Any,
) -> Decision:
    """Decide; a refusal is audited and raised."""
    if ctx.trusted:
        return TRUSTED
    assert ctx.actor is not None
    decision = decide(
        ctx.actor, ctx.access, action, record.facts, record.consents, ctx.clock(), document
    )
    if not decision.permit:
        raise await refuse(ctx, decision, patient_id=record.facts.id, **audit)
    return decision


# -- notifications -------------------------------------------------------------------------


def _professional(ctx: Context) -> str:
    actor = ctx.actor
    return f"Le professionnel RPPS {actor.rpps}" if actor and actor.rpps else "Un professionnel"


def notification_write(
    ctx: Context, communication: dict[str, Any], key: str | None = None
) -> Write:
    cid = new_id()
    keys = (key,) if key else ()
    return make_write(
        "create",
        "Communication",
        cid,
        {**communication, "id": cid},
        current=None,
        now=ctx.now_iso(),
        extra_keys=keys,
    )


async def read_notifications(ctx: Context, record: Record, decision: Decision) -> list[Write]:
    """Emergency access (every time) and a professional's first consultation (once, made
    unique by a key the database holds)."""
    actor = ctx.actor
    if actor is None or actor.role not in PROFESSIONAL_ROLES:
        return []
    out: list[Write] = []
    now, pid = ctx.clock(), record.facts.id
    if ctx.access.mode is not AccessMode.NORMAL:
        out.append(
            notification_write(
                ctx,
                notify.emergency_access(
                    pid,
                    now,
                    ctx.access.mode,
                    _professional(ctx),
                    actor.rpps,
                    ctx.access.justification,
                    record.facts.treating_rpps,
                ),
            )
        )
    key = f"Communication.first-consultation|{pid}|{actor.rpps}"
    if actor.rpps and await ctx.store.holder_of(key) is None:
        out.append(
            notification_write(
                ctx, notify.first_consultation(pid, now, _professional(ctx), actor.rpps), key
            )
        )
    return out


def filing_notifications(
    ctx: Context,
    patient_id: str,
    document: Mapping[str, Any],
    doc_ref: str,
    facts: DocumentFacts | None = None,
) -> list[Write]:
    """The patient's notification of a new document (`facts`: the document's, when the
    caller has them already)."""
    actor = ctx.actor
    if actor is None or actor.role in (Role.PATIENT, Role.LEGAL_REPRESENTATIVE):
        return []
    if not notify.should_notify_new_document(facts or document_facts(document)):
        return []
    title = str(
        (document.get("content") or [{}])[0].get("attachment", {}).get("title")
        or document.get("description")
        or "document"
    )
    who = (
        _professional(ctx) if actor.rpps else f"l'établissement {actor.organization or ''}".strip()
    )
    return [
        notification_write(ctx, notify.new_document(patient_id, ctx.clock(), doc_ref, title, who))
    ]


async def commit_read(
    ctx: Context, decision: Decision, record: Record | None, **audit: Any
) -> None:
    """The audit of a permitted read (and its notifications), durable before the answer."""
    writes = [
        audit_write(
            ctx, decision, status=200, patient_id=record.facts.id if record else None, **audit
        )
    ]
    if record is not None and not ctx.trusted:
        writes += await read_notifications(ctx, record, decision)
    try:
        await ctx.store.commit(writes)
    except UniqueViolation:
        if len(writes) == 1:
            raise
        # a racing first-consultation notice won the key: the audit alone still goes in
        await ctx.store.commit(writes[:1])


# -- reads ---------------------------------------------------------------------------------


async def _read_target(
    ctx: Context, rtype: str, resource: Mapping[str, Any] | None
) -> tuple[str | None, DocumentFacts | None]:
    """The record and the document whose rules govern reading this resource."""
    if rtype == "Binary":
        doc = await document_of_binary(ctx, resource)
        if doc is None:
            return None, None
        return patient_of("DocumentReference", doc), document_facts(doc)
    document = document_facts(resource) if rtype == "DocumentReference" and resource else None
    return patient_of(rtype, resource), document


async def authorize_read(
    ctx: Context,
    rtype: str,
    id: str,
    resource: Mapping[str, Any] | None,
    interaction: str,
    ref: str,
) -> None:
    """Check and audit the read of one resource (read, vread, instance history)."""
    transaction = "ITI-68" if rtype == "Binary" else None
    audit = {"interaction": interaction, "resource": ref, "transaction": transaction}
    if ctx.trusted:
        await commit_read(ctx, TRUSTED, None, **audit)
        return
    patient_id, document = await _read_target(ctx, rtype, resource)
    if patient_id is None:
        # not attached to any record (e.g. a Binary no document points at): only the
        # auditor may look; everyone else learns nothing
        decision = Decision.hide("unattached", "not attached to a record")
        if ctx.actor is not None and ctx.actor.role == Role.AUDITOR:
            await commit_read(ctx, Decision.allow("auditor", "unattached resource"), None, **audit)
            return
        raise await refuse(ctx, decision, patient_id=None, **audit)
    record = await load_record(ctx, patient_id)
    action = ACTIONS.get((rtype, "read"), Action.READ)
    decision = await check(ctx, action, record, document, **audit)
    await commit_read(ctx, decision, record, **audit)


# -- searches ------------------------------------------------------------------------------

PATIENT_PARAMS = ("patient", "subject")


async def search_patient_id(
    ctx: Context, rtype: str, params: Sequence[tuple[str, str]]
) -> str | None:
    """The record a search is scoped to, from `patient` / `subject` / `patient.identifier`."""
    from fhir_server.fhir.uniqueness import unique_keys

    for name, value in params:
        base = name.split(":", 1)[0]
        if base in PATIENT_PARAMS and value and "," not in value:
            return local_id(value if "/" in value else f"Patient/{value}")
        if (
            base in ("patient.identifier", "subject.identifier", "patient:identifier")
            and "|" in value
        ):
            system, _, code = value.partition("|")
            keys = unique_keys("Patient", {"identifier": [{"system": system, "value": code}]})
            holder = await ctx.store.holder_of(keys[0]) if keys else None
            return holder[1] if holder else None
        if rtype == "Patient" and base == "_id" and "," not in value:
            return value
    return None


@dataclass
class SearchScope:
    """What the guard says of a search: the record (if scoped), the decision, and for
    DocumentReference the visibility filter the store query must apply."""

    record: Record | None
    decision: Decision
    visibility: Any = None


async def authorize_search(
    ctx: Context, rtype: str, params: Sequence[tuple[str, str]]
) -> SearchScope:
    query = urlencode(list(params))
    audit = {
        "interaction": "search-type",
        "query": query,
        "transaction": "ITI-67" if rtype == "DocumentReference" else None,
    }
    if ctx.trusted:
        return SearchScope(None, TRUSTED)
    assert ctx.actor is not None
    action = ACTIONS.get((rtype, "search-type"))
    patient_id = await search_patient_id(ctx, rtype, params)
    if action is Action.SEARCH_PATIENT:
        named = patient_id is not None or any(n.split(":")[0] == "identifier" for n, _ in params)
        if not named and ctx.actor.role != Role.AUDITOR:
            # no browsing of the national patient list: identity lookup is by INS
            raise errors.bad_request("A Patient search must give the INS (identifier) or _id")
        return SearchScope(None, Decision.allow("per-result", "each Patient is checked"))
    if action is None or patient_id is None:
        if ctx.actor.role == Role.AUDITOR and rtype in ("AuditEvent", "Communication"):
            return SearchScope(None, Decision.allow("auditor", "audit trail"))
        raise errors.bad_request(
            f"A {rtype} search must name the patient (patient or patient.identifier)"
        )
    record = await load_record(ctx, patient_id)
    decision = await check(ctx, action, record, None, **audit)
    visibility = None
    if rtype == "DocumentReference":
        visibility = visibility_filter(
            ctx.actor, ctx.access, record.facts, record.consents, ctx.clock()
        )
    return SearchScope(record, decision, visibility)


async def visible_results(
    ctx: Context, rtype: str, scope: SearchScope, entries: list[Any]
) -> list[Any]:
    """Defence in depth: whatever the store returned, drop what this actor may not see."""
    if ctx.trusted:
        return entries
    assert ctx.actor is not None
    kept = []
    for stored in entries:
        res = stored.resource or {}
        if stored.rtype == rtype == "DocumentReference" and scope.visibility is not None:
            if scope.visibility.admits(document_facts(res)):
                kept.append(stored)
            continue
        if await _silently_permitted(ctx, stored.rtype, res):
            kept.append(stored)
    return kept


async def _silently_permitted(ctx: Context, rtype: str, resource: Mapping[str, Any]) -> bool:
    assert ctx.actor is not None
    patient_id, document = await _read_target(ctx, rtype, resource)
    if patient_id is None:
        return ctx.actor.role == Role.AUDITOR
    record = await load_record(ctx, patient_id)
    action = ACTIONS.get((rtype, "read"), Action.READ)
    if rtype == "Communication" and ctx.actor.role == Role.LEGAL_REPRESENTATIVE:
        labels = {s.get("code") for s in (resource.get("meta") or {}).get("security") or []}
        if "INVISIBLE_REPRESENTANTS_LEGAUX" in labels:
            return False
    return decide(
        ctx.actor, ctx.access, action, record.facts, record.consents, ctx.clock(), document
    ).permit


async def commit_search(
    ctx: Context, scope: SearchScope, rtype: str, params: Sequence[tuple[str, str]]
) -> None:
    query = urlencode(list(params))
    await commit_read(
        ctx,
        scope.decision,
        scope.record,
        interaction="search-type",
        query=query,
        transaction="ITI-67" if rtype == "DocumentReference" else None,
    )


# -- writes --------------------------------------------------------------------------------


async def authorize_write(
    ctx: Context,
    interaction: str,
    rtype: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    ref: str,
    transaction: str | None = None,
    action: Action | None = None,
) -> list[Write]:
    """Check a create / update / patch / delete (or the named `action`); return the audit
    and notification Writes to commit with the change."""
    audit = {"interaction": interaction, "resource": ref, "transaction": transaction}
    target = after if after is not None else before
    patient_id = patient_of(rtype, target)
    if rtype == "Binary" and target is not None:
        doc = await document_of_binary(ctx, target)
        patient_id = patient_of("DocumentReference", doc) if doc else None
    if ctx.trusted:
        return [audit_write(ctx, TRUSTED, status=200, patient_id=patient_id, **audit)]
    assert ctx.actor is not None
    if patient_id is None and ctx.access.emergency:
        refusal = Decision.deny(
            "emergency-read-only", f"{ctx.access.mode.value} access is read-only"
        )
        raise await refuse(ctx, refusal, patient_id=None, **audit)
    if patient_id is None:
        if rtype == "Binary" and ctx.actor.role in FILING_ROLES:
            # document content posted with (or before) its DocumentReference: reading it
            # follows that document's rules, so holding it grants nothing
            allow = Decision.allow("filing", "document content")
            return [audit_write(ctx, allow, status=201, patient_id=None, **audit)]
        raise FhirError(
            422,
            [
                Issue(
                    "business-rule",
                    f"A {rtype} must belong to a patient's record (Patient/id reference)",
                )
            ],
        )
    creating_record = rtype == "Patient" and before is None
    record = new_record(patient_id) if creating_record else await load_record(ctx, patient_id)
    if (
        rtype == "DocumentReference"
        and interaction == "create"
        and record.facts.record.value == "absent"
    ):
        raise FhirError(
            404, [Issue("not-found", f"Patient/{patient_id} has no DMP: nothing can be filed")]
        )
    wanted = [(action, None)] if action else _write_actions(rtype, interaction, before, after)
    decisions = [await check(ctx, act, record, doc, **audit) for act, doc in wanted]
    writes = [audit_write(ctx, decisions[-1], status=200, patient_id=patient_id, **audit)]
    if rtype == "DocumentReference" and interaction == "create" and after is not None:
        writes += filing_notifications(ctx, patient_id, after, ref, wanted[-1][1])
    if creating_record:
        writes.append(notification_write(ctx, notify.record_created(patient_id, ctx.clock())))
        # the rest of this request (a transaction's other entries) sees the record open
        ctx.extras.setdefault("records", {})[patient_id] = record
    return writes


async def authorize_new_record(
    ctx: Context, patient: Mapping[str, Any], transaction: str | None = None
) -> list[Write]:
    """A Patient created on the way (a filing for an INS no record holds yet): check that
    the actor may open the record, and let the filing see the record as open."""
    pid = str(patient["id"])
    return await authorize_write(
        ctx, "create", "Patient", None, patient, f"Patient/{pid}", transaction
    )


def _write_actions(
    rtype: str, interaction: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[tuple[Action, DocumentFacts | None]]:
    if rtype != "DocumentReference":
        return [
            (
                ACTIONS.get(
                    (rtype, interaction),
                    Action.WRITE_PATIENT if rtype == "Patient" else Action.FILE,
                ),
                None,
            )
        ]
    if interaction == "create" or before is None:
        return [(Action.FILE, document_facts(after or {}))]
    current = document_facts(before)
    if interaction == "delete":
        return [(Action.DELETE, current)]
    assert after is not None
    new = document_facts(after)
    actions = label_actions(current.labels, new.labels) + metadata_actions(before, after)
    return [(a, current) for a in actions or [Action.PATCH_METADATA]]
