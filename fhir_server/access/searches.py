"""Searches through the Gate: scoped to one record, filtered by the store query itself
(so totals, counts and cursors see exactly what entries show), checked once more, and
audited in the record searched (the lookups of conditional operations: `lookups.py`).

- A search names its record (`patient`, `subject`, `patient.identifier`); an INS no
  record holds is searched as a record that does not exist, with the same answer a
  record refused to the actor gets.
- DocumentReference, and the resources derived from documents (Observation,
  DiagnosticReport, which carry their document's facts): the policy's
  `VisibilityFilter` is ANDed into the query.
- AuditEvent and notices (`Communication`), read by the patient, a legal representative
  or the treating physician: the entries naming a document hidden from that reader are
  left out by the query (`Not(entity in hidden)`), so the trail never names them.
- Patient: identity lookup by INS or id only (no browsing the national list); each
  Patient found is one the actor may see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fhir_server import errors
from fhir_server.access import reverse_chains
from fhir_server.access.audit import TRUSTED
from fhir_server.access.records import NO_RECORD, Record
from fhir_server.access.targets import TRAIL_TYPES
from fhir_server.auth.actor import Role
from fhir_server.fhir.compartment import local_id, patient_of
from fhir_server.fhir.derived import DERIVED_TYPES
from fhir_server.fhir.uniqueness import unique_keys
from fhir_server.policy import Action, Decision, DocumentFacts, VisibilityFilter, visibility_filter
from fhir_server.policy.facts import derived_facts, document_facts
from fhir_server.policy.tables import OWN_DOCUMENTS, READ_ACTION, SEARCH_ACTION
from fhir_server.search.params import params_of
from fhir_server.search.parse import identifier_cond
from fhir_server.search.plan import Cond, Not, SearchPlan, SearchResult, TermIn
from fhir_server.storage.port import Stored

if TYPE_CHECKING:
    from fhir_server.access.gate import Gate

PATIENT_PARAMS = ("patient", "subject")
PATIENT_IDENTIFIER_PARAMS = ("patient.identifier", "subject.identifier", "patient:identifier")
HIDDEN_DOCUMENTS_MAX = 10_000
IDENTITY_MAX = 50
# the types searched within one record (their store rows carry the record's id)
COMPARTMENT_TYPES = (
    "DocumentReference",
    "Consent",
    "List",
    "AuditEvent",
    "Communication",
    *DERIVED_TYPES,
)
# the types whose rows carry a document's facts: the policy's filter applies to them
DOCUMENT_RULED = ("DocumentReference", *DERIVED_TYPES)
TRAIL_REF_PARAM = {"AuditEvent": "entity", "Communication": "about"}
# the parameters by which the feeding profile names the documents it looks for
OWN_DOCUMENT_KEYS = frozenset({"identifier", "_id"})


async def search_scope(gate: Gate, rtype: str, params: Sequence[tuple[str, str]]) -> Record | None:
    """The record a search is scoped to; None when the query names none."""
    for name, value in params:
        base = name.split(":", 1)[0]
        if base in PATIENT_PARAMS and value and "," not in value:
            pid = local_id(value if "/" in value else f"Patient/{value}")
            return await gate.record(pid) if pid else NO_RECORD
        if name in PATIENT_IDENTIFIER_PARAMS and "|" in value:
            system, _, code = value.partition("|")
            keys = unique_keys("Patient", {"identifier": [{"system": system, "value": code}]})
            holder = await gate._store.holder_of(keys[0]) if keys else None
            return await gate.record(holder[1]) if holder else NO_RECORD
    return await _scope_by_id(gate, rtype, params)


def _named_by_id(rtype: str, params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(type, id) of what a search names by id: `_id`, or `_has:<type>:<param>:_id`."""
    named = [(rtype, v) for n, v in params if n == "_id"]
    for name, value in params:
        parts = name.split(":")
        if len(parts) == 4 and parts[0] == "_has" and parts[3] == "_id":
            named.append((parts[1], value))
    return named


async def _scope_by_id(gate: Gate, rtype: str, params: Sequence[tuple[str, str]]) -> Record | None:
    """Structured content searched by `_id` alone (`DiagnosticReport?_id=..&_include=..`,
    `Observation?_has:DiagnosticReport:result:_id=..`): the record of the resource named
    (one id); a record that does not exist when the resource is unknown or hidden from the
    actor, so both answer alike."""
    named = _named_by_id(rtype, params)
    if rtype not in DERIVED_TYPES or len(named) != 1:
        return None
    ((named_type, id),) = named
    if named_type not in DERIVED_TYPES or "," in id or not id:
        return None
    stored = await gate._store.read(named_type, id)
    if stored is None or stored.deleted or not await sees_stored(gate, stored):
        return NO_RECORD
    pid = patient_of(named_type, stored.resource)
    return await gate.record(pid) if pid else NO_RECORD


def hides_documents(gate: Gate, record: Record) -> VisibilityFilter | None:
    """The filter selecting the record's documents hidden from this trail reader (None:
    every document is visible to them, or they read no trail)."""
    actor = gate.ctx.actor
    if actor is None or actor.role == Role.AUDITOR:
        return None
    ctx = gate.ctx
    seen = visibility_filter(actor, ctx.access, record.facts, record.consents, ctx.clock())
    return None if seen.hides_nothing else seen.inverted()


async def _hidden_refs(gate: Gate, record: Record) -> tuple[str, ...]:
    """ "Type/id" of the record's documents (their content and structured content) hidden
    from this reader."""
    hidden = hides_documents(gate, record)
    if hidden is None:
        return ()
    plan = SearchPlan("DocumentReference", count=HIDDEN_DOCUMENTS_MAX, visibility=hidden)
    result = await gate._store.search(plan)
    refs: list[str] = []
    for doc in result.entries:
        refs.append(f"DocumentReference/{doc.id}")
        for content in (doc.resource or {}).get("content") or []:
            url = str((content.get("attachment") or {}).get("url") or "")
            if (bid := local_id(url, "Binary")) is not None:
                refs.append(f"Binary/{bid}")
    # their structured content carries their facts: the same filter finds it
    for rtype in DERIVED_TYPES:
        plan = SearchPlan(rtype, count=HIDDEN_DOCUMENTS_MAX, visibility=hidden)
        refs += [f"{rtype}/{s.id}" for s in (await gate._store.search(plan)).entries]
    return tuple(refs)


async def scoped_plan(gate: Gate, plan: SearchPlan, record: Record) -> SearchPlan:
    """The query restricted, in the store, to the record the decision was made on (a
    parameter the store ignores cannot widen it) and to what this actor may see there."""
    ctx = gate.ctx
    assert ctx.actor is not None
    pid = record.facts.id
    if plan.rtype in DOCUMENT_RULED:
        vis = visibility_filter(ctx.actor, ctx.access, record.facts, record.consents, ctx.clock())
        return replace(plan, visibility=vis)
    plan = replace(plan, visibility=VisibilityFilter(pid, match_nothing=not pid))
    if plan.rtype in TRAIL_REF_PARAM and (refs := await _hidden_refs(gate, record)):
        param = TRAIL_REF_PARAM[plan.rtype]
        omit = Not(TermIn("ref", tuple(f"{param}|{r}" for r in refs)))
        return replace(plan, where=(*plan.where, omit))
    return plan


def identity_lookup(rtype: str, params: Sequence[tuple[str, str]]) -> bool:
    names = {n.split(":")[0] for n, _ in params}
    return rtype == "Patient" and bool(names & {"identifier", "_id"})


async def search(gate: Gate, plan: SearchPlan, params: Sequence[tuple[str, str]]) -> SearchResult:
    """A client's search (`search-type`), scoped, filtered and audited."""
    rtype, ctx = plan.rtype, gate.ctx
    audit = {
        "interaction": "search-type",
        "query": urlencode(list(params)),
        "transaction": "ITI-67" if rtype == "DocumentReference" else None,
    }
    if gate.trusted:
        result = await gate._store.search(await reverse_chains.resolved(gate, plan, None))
        await gate.commit_read(TRUSTED, None, **audit)
        return result
    assert ctx.actor is not None
    action = SEARCH_ACTION.get(rtype)
    record = await search_scope(gate, rtype, params)
    pid = record.facts.id or None if record else None
    # a filer finds a document it filed by its uniqueId or id without the right to read
    # the record (feeding profile, TD3.1b); any other search needs that right
    feeds = (
        rtype == "DocumentReference"
        and bool({n.split(":", 1)[0] for n, _ in params} & OWN_DOCUMENT_KEYS)
        and gate.request_refusal(Action.FIND_OWN) is None
    )
    if (refusal := gate.request_refusal(action)) is not None and not feeds:
        raise await gate.refuse(refusal, patient_id=pid, ref=None, **audit)
    if action is Action.SEARCH_PATIENT:
        return await _identity_search(gate, plan, params, audit)
    if rtype not in COMPARTMENT_TYPES:
        raise errors.bad_request(
            f"A {rtype} is read by id (a Binary as the content of its DocumentReference)"
        )
    if record is None:
        if ctx.actor.role == Role.AUDITOR and rtype in TRAIL_TYPES:
            result = await gate._store.search(plan)
            await gate.commit_read(Decision.allow("auditor", "audit trail"), None, **audit)
            return result
        raise errors.bad_request(
            f"A {rtype} search must name the patient (patient or patient.identifier)"
        )
    assert action is not None
    decision = gate.decide(action, record)
    if not decision.permit and feeds:
        feeding = gate.decide(Action.FIND_OWN, record)
        if feeding.permit:
            return await _own_documents(gate, plan, record, feeding, audit)
    if not decision.permit:
        raise await gate.refuse(decision, patient_id=pid, ref=None, **audit)
    plan = await reverse_chains.resolved(gate, plan, record)
    result = await gate._store.search(await scoped_plan(gate, plan, record))
    result.entries = await visible(gate, result.entries)
    result.included = await visible(gate, result.included)
    await gate.commit_read(decision, record, **audit)
    return result


def own_condition(gate: Gate) -> Cond:
    """The documents this filer filed (`tables.OWN_DOCUMENTS`), as a query condition."""
    actor = gate.ctx.actor
    assert actor is not None
    param, system, claim = OWN_DOCUMENTS[actor.role]
    value = getattr(actor, claim) or ""
    return identifier_cond(params_of("DocumentReference")[param], [f"{system}|{value}"])


async def _own_documents(
    gate: Gate, plan: SearchPlan, record: Record, decision: Decision, audit: dict[str, Any]
) -> SearchResult:
    """The feeding profile's search (TD3.1b): the filer's own documents in this record,
    without the right to read it; each one checked as a document the filer may know."""
    pid = record.facts.id
    scoped = replace(
        plan,
        where=(*plan.where, own_condition(gate)),
        visibility=VisibilityFilter(pid, match_nothing=not pid),
        includes=(),
    )
    result = await gate._store.search(scoped)
    result.entries = [e for e in result.entries if await sees_stored(gate, e, known=True)]
    result.included = []
    await gate.commit_read(decision, record, **audit)
    return result


async def _identity_search(
    gate: Gate, plan: SearchPlan, params: Sequence[tuple[str, str]], audit: dict[str, Any]
) -> SearchResult:
    actor = gate.ctx.actor
    assert actor is not None
    if not identity_lookup("Patient", params) and actor.role != Role.AUDITOR:
        # no browsing of the national patient list: identity lookup is by INS
        raise errors.bad_request("A Patient search must give the INS (identifier) or _id")
    # a lookup names a few Patients: all of them are fetched and checked, so that the page,
    # its total and a count hold only Patients the actor may see (no cursor to page on)
    wanted = replace(plan, count=IDENTITY_MAX, total="none", cursor=None)
    if plan.summary == "count":
        wanted = replace(wanted, summary=None)
    raw = await gate._store.search(wanted)
    if raw.next_cursor is not None:
        raise errors.bad_request(f"An identity lookup names at most {IDENTITY_MAX} Patients")
    seen = await visible(gate, raw.entries)
    counted = plan.total != "none" or plan.summary == "count"
    result = SearchResult(
        entries=[] if plan.summary == "count" else seen[: plan.count],
        total=len(seen) if counted else None,
        included=await visible(gate, raw.included),
    )
    found = result.entries[0].id if len(result.entries) == 1 else None
    record = await gate.record(found) if found else None
    decision = Decision.allow("identity-lookup", "each Patient found is one the actor may see")
    await gate.commit_read(decision, record, **audit)
    return result


async def visible(gate: Gate, entries: list[Stored]) -> list[Stored]:
    """Defence in depth: whatever the store returned, only what this actor may see."""
    if gate.trusted:
        return entries
    judges: Judges = {}
    kept = []
    for stored in entries:
        if await sees_stored(gate, stored, judges=judges):
            kept.append(stored)
    return kept


# a page's deciders, by record and action (what depends on the record is worked out once)
Judges = dict[tuple[str, Action], Callable[[DocumentFacts | None], Decision]]


async def sees_stored(
    gate: Gate, stored: Stored, *, known: bool = False, judges: Judges | None = None
) -> bool:
    """Whether the actor may see a resource a query found (a cheap check: its record and,
    for a document, its labels; a Binary through `Gate.read`). `known`: whether they may
    know it exists (`Gate.sees`: a filer knows its own documents without the right to read
    the record), for the lookups of writes, which the write then judges."""
    if gate.trusted:
        return True
    res = stored.resource or {}
    rtype = stored.rtype
    pid = patient_of(rtype, res)
    if pid is None:
        return gate.ctx.actor is not None and gate.ctx.actor.role == Role.AUDITOR
    record = await gate.record(pid)
    doc = (
        document_facts(res)
        if rtype == "DocumentReference"
        else derived_facts(res)
        if rtype in DERIVED_TYPES
        else None
    )
    if (
        rtype == "Communication"
        and gate.ctx.actor
        and gate.ctx.actor.role == Role.LEGAL_REPRESENTATIVE
    ):
        labels = {s.get("code") for s in (res.get("meta") or {}).get("security") or []}
        if "INVISIBLE_REPRESENTANTS_LEGAUX" in labels:
            return False
    if known:
        return gate.sees(rtype, record, doc)
    action = READ_ACTION.get(rtype, Action.READ)
    if judges is None:
        return gate.decide(action, record, doc).permit
    if (judge := judges.get((pid, action))) is None:
        judge = judges[(pid, action)] = gate.decider(action, record)
    return judge(doc).permit
