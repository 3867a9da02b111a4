"""The DMP access decision: `decide()`, `sees()`, `request_refusal()` and the search
`visibility_filter()`.

Evaluation order (first rule that speaks wins). Rules 1-6 look only at the request (who
asks, how, for what): the enforcement point runs them before it reads anything, so their
answer is the same whatever is stored. Rules 7-9 refuse the actor the whole record. Then,
when a document is given, "hidden" is checked before every other refusal: an actor who
may read the record but not this document gets exactly the answer an unknown id gets,
whatever they try to do with it. Rules 10-14 follow.

| # | rule id | answer | source |
|---|---|---|---|
| 1 | forbidden-role | refused | L.1111-18 |
| 2 | access-mode-role | refused | centre_15 = SAMU only; bris_de_glace = practitioner (**decision**) |
| 3 | justification-required | refused | bris_de_glace needs a justification |
| 4 | emergency-read-only | refused | emergency modes read only ("may write: no") |
| 5 | not-allowed (role) | refused | no quality the role can hold grants the action (CAPABILITIES) |
| 6 | no-habilitation | refused | profession without a habilitation row |
| 7 | not-own-record | refused | a patient / legal representative acts for their `patient` claim only |
| 8 | minor-no-access | refused | "a minor has no access of their own" |
| 9 | consent-block | no-access | Consent rule 3: a block beats everything, break-glass included |
| (12) | hidden (below) | hidden | checked here when a document is given |
| 10 | no-record / record-opposed / record-closed | no-access (reads), no-record (writes) / refused | Consent rule 1, Closing |
| 11 | emergency-opposed / no-authorisation / not-allowed | no-access | L.1111-17, R.1111-41, CAPABILITIES |
| 12 | masked-for-professionals / invisible-to-patient / invisible-to-legal-representatives / class-not-habilitated | hidden | Visibility |
| 13 | not-allowed (document qualities: author...) | refused | CAPABILITIES |
| 14 | filing-scope / label-not-settable | refused | FILING_SCOPES, LABELS_AT_FILING |
| - | the granting quality (holder, treating-physician, ...) | granted | |

The answers (`model.Answer`) are what make "hidden" and "absent" indistinguishable: every
refusal that depends on stored data the actor may not have (is there a record, a block,
an authorisation, an opposition) carries the one `no-access` text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.auth.actor import (
    ACCESS_MODE_ROLES,
    ESTABLISHMENT_ROLES,
    FINESS_SYSTEM,
    PROFESSIONAL_ROLES,
    ROLES,
    AccessContext,
    AccessMode,
    Actor,
    Role,
)
from fhir_server.policy.consents import (
    PURPOSE_BY_MODE,
    ConsentFacts,
    Provision,
    actor_ids,
    parse_consents,
)
from fhir_server.policy.model import (
    DOCUMENT_ACTIONS,
    FILING_ACTIONS,
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    READ_ACTIONS,
    VISIBILITY_CODES,
    WRITE_ACTIONS,
    Action,
    Decision,
    DocumentFacts,
    PatientFacts,
    RecordStatus,
)
from fhir_server.policy.tables import (
    CAPABILITIES,
    DOCUMENT_QUALITY_ROLES,
    FILING_SCOPES,
    HABILITATIONS,
    LABELS_AT_FILING,
    QUALITY_PRIORITY,
    READ_STANDINGS,
    ROLE_QUALITIES,
    Quality,
)
from fhir_server.policy.visibility import LabelRule, VisibilityFilter, embargo_cutoff

Q = Quality
_NO_RECORD = frozenset({RecordStatus.ABSENT, RecordStatus.OPPOSED})
CLINICAL_READS = frozenset({Action.READ, Action.SEARCH})
# The one text of every `no-access` refusal (see the module docstring).
NO_ACCESS_REASON = (
    "No access to this patient's record: it does not exist, or it is not open to this "
    "actor (the patient has not authorised it)"
)


@dataclass(frozen=True)
class _Ctx:
    actor: Actor
    access: AccessContext
    action: Action
    patient: PatientFacts
    consents: ConsentFacts
    now: datetime
    purpose: str
    authorisation: Provision | None
    qualities: frozenset[Quality]

    @property
    def professional(self) -> bool:
        return self.actor.role in PROFESSIONAL_ROLES

    @property
    def bound(self) -> bool:
        return self.actor.patient is not None and self.actor.patient == self.patient.id


def _qualities(
    actor: Actor, access: AccessContext, patient: PatientFacts, consents: ConsentFacts, auth
) -> frozenset[Quality]:
    bound = actor.patient is not None and actor.patient == patient.id
    professional = actor.role in PROFESSIONAL_ROLES
    emergency_ok = (
        access.emergency
        and actor.role in ACCESS_MODE_ROLES[access.mode]
        and consents.emergency_opposition(PURPOSE_BY_MODE[access.mode]) is None
    )
    establishment = actor.role in ESTABLISHMENT_ROLES
    held = {
        Q.HOLDER: actor.role == Role.PATIENT and bound,
        Q.LEGAL_REP: actor.role == Role.LEGAL_REPRESENTATIVE and bound,
        Q.TREATING: professional and actor.rpps is not None and actor.rpps == patient.treating_rpps,
        Q.AUTHORISED: professional and auth is not None,
        Q.EMERGENCY: professional and emergency_ok,
        Q.PROFESSIONAL: professional,
        Q.ESTABLISHMENT: establishment,
        Q.CARE_ESTABLISHMENT: establishment and auth is not None,
        Q.ASSURANCE_MALADIE: actor.role == Role.ASSURANCE_MALADIE,
        Q.AUDITOR: actor.role == Role.AUDITOR,
    }
    return frozenset(q for q, yes in held.items() if yes)


def _document_qualities(ctx: _Ctx, doc: DocumentFacts) -> frozenset[Quality]:
    actor = ctx.actor
    held = {
        Q.AUTHOR: ctx.professional and actor.rpps in doc.author_rpps,
        Q.SAME_ORGANIZATION: actor.role in ESTABLISHMENT_ROLES
        and actor.organization is not None
        and actor.organization == doc.custodian_finess,
        Q.OWN_DEPOSIT: bool(ctx.qualities & {Q.HOLDER, Q.LEGAL_REP}) and doc.filed_by_patient,
    }
    return frozenset(q for q, yes in held.items() if yes)


def _potential(actor: Actor) -> frozenset[Quality]:
    """Document qualities this actor could hold on some document of the record."""
    return frozenset(q for q, roles in DOCUMENT_QUALITY_ROLES.items() if actor.role in roles)


# ------------------------------------------------------------------ request-only rules


def _forbidden_role(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    if actor.role not in ROLES:
        return Decision.deny("forbidden-role", f"role {actor.role!r} may not access the DMP")
    return None


def _mode_role(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    if actor.role not in ACCESS_MODE_ROLES[access.mode]:
        return Decision.deny(
            "access-mode-role",
            f"access mode {access.mode.value} is not available to role {actor.role}",
        )
    return None


def _justification(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    if access.mode is AccessMode.BRIS_DE_GLACE and not access.justification:
        return Decision.deny("justification-required", "bris_de_glace requires a justification")
    return None


def _emergency_read_only(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    if access.emergency and action in WRITE_ACTIONS:
        return Decision.deny(
            "emergency-read-only", f"{access.mode.value} access is read-only; write in normal mode"
        )
    return None


def _role_capability(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    if CAPABILITIES[action] & ROLE_QUALITIES.get(actor.role, frozenset()):
        return None
    return Decision.deny("not-allowed", f"{action.value} is not allowed to a {actor.role}")


def _habilitation(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    if action not in CLINICAL_READS or actor.role not in PROFESSIONAL_ROLES:
        return None
    if actor.profession not in HABILITATIONS:
        return Decision.deny(
            "no-habilitation", f"profession {actor.profession} has no DMP habilitation"
        )
    return None


REQUEST_RULES = (
    _forbidden_role,
    _mode_role,
    _justification,
    _emergency_read_only,
    _role_capability,
    _habilitation,
)


def request_refusal(actor: Actor, access: AccessContext, action: Action) -> Decision | None:
    """The refusal the request alone earns (rules 1-6), or None: nothing stored is read."""
    for rule in REQUEST_RULES:
        if (decision := rule(actor, access, action)) is not None:
            return decision
    return None


# ------------------------------------------------------------------- record-level rules


def _binding(ctx: _Ctx) -> Decision | None:
    if ctx.actor.role in (Role.PATIENT, Role.LEGAL_REPRESENTATIVE) and not ctx.bound:
        return Decision.deny("not-own-record", "this token acts for another patient")
    return None


def _minor(ctx: _Ctx) -> Decision | None:
    if ctx.actor.role == Role.PATIENT and ctx.bound and ctx.patient.minor:
        return Decision.deny(
            "minor-no-access", "a minor has no access of their own: the legal representative acts"
        )
    return None


def _block(ctx: _Ctx) -> Decision | None:
    block = ctx.consents.block(actor_ids(ctx.actor), ctx.purpose)
    if block is None:
        return None
    who = "establishment" if any(s == FINESS_SYSTEM for s, _ in block.actors) else "professional"
    return Decision.no_access("consent-block", f"the patient has blocked this {who}")


ACTOR_RULES = (_binding, _minor, _block)


def _record_state(ctx: _Ctx) -> Decision | None:
    record, action = ctx.patient.record, ctx.action
    keeper = bool(ctx.qualities & {Q.HOLDER, Q.LEGAL_REP})
    if record is RecordStatus.OPPOSED and action is Action.CREATE_RECORD:
        return Decision.deny("record-opposed", "the holder opposed the creation of a DMP")
    if record is RecordStatus.ABSENT and action is Action.CREATE_RECORD:
        return None
    if record in _NO_RECORD and action in READ_ACTIONS:
        return Decision.no_access("no-record", f"this patient has no DMP (record {record})")
    if record in _NO_RECORD and action is not Action.WRITE_CONSENT:
        # Creation and opposition are expressed by Consent, so that one stays possible.
        return Decision.not_found("no-record", f"this patient has no DMP (record {record})")
    if record is RecordStatus.CLOSED and action in FILING_ACTIONS:
        return Decision.deny("record-closed", "the record is closed: nothing can be filed")
    if record is RecordStatus.CLOSED and action in WRITE_ACTIONS and not keeper:
        return Decision.deny(
            "record-closed", "the record is closed: read-only for everyone but the holder"
        )
    return None


def _explain_refusal(ctx: _Ctx) -> Decision:
    """Why a record-level capability is missing: recorded in the audit, told as no-access."""
    if ctx.action in CLINICAL_READS and ctx.professional:
        if ctx.access.emergency and ctx.consents.emergency_opposition(ctx.purpose) is not None:
            return Decision.no_access(
                "emergency-opposed",
                f"the patient has refused {ctx.access.mode.value} access (L.1111-17)",
            )
        return Decision.no_access(
            "no-authorisation",
            "the patient has not authorised this professional or establishment (R.1111-41)",
        )
    return Decision.no_access(
        "not-allowed", f"{ctx.action.value} is not allowed to a {ctx.actor.role} on this record"
    )


def _capability(ctx: _Ctx) -> Decision | None:
    if CAPABILITIES[ctx.action] & (ctx.qualities | _potential(ctx.actor)):
        return None
    return _explain_refusal(ctx)


RECORD_RULES = (_record_state, _capability)

# --------------------------------------------------------------- document-level rules


def _filter_for(ctx: _Ctx) -> VisibilityFilter:
    """Visibility of the record's documents for an actor who passed the record rules."""
    pid, q = ctx.patient.id, ctx.qualities
    if not q & READ_STANDINGS:
        return VisibilityFilter(pid, match_nothing=True)
    if q & {Q.HOLDER, Q.LEGAL_REP}:
        embargo = LabelRule(INVISIBLE_PATIENT, only_if_filed_after=embargo_cutoff(ctx.now))
        extra = (LabelRule(INVISIBLE_REPRESENTANTS_LEGAUX),) if Q.LEGAL_REP in q else ()
        return VisibilityFilter(pid, exclude=(embargo, *extra))
    classes = HABILITATIONS.get(ctx.actor.profession, frozenset())
    if Q.TREATING in q:
        return VisibilityFilter(pid, allowed_classes=classes)
    # Authorised, care team or emergency: MASQUE_PS stays hidden, also in emergency modes
    # (dmp-rules.md decision), except from the document's own author.
    return VisibilityFilter(
        pid,
        allowed_classes=classes,
        exclude=(LabelRule(MASQUE_PS, unless_author_rpps=ctx.actor.rpps),),
    )


def _visibility(ctx: _Ctx, doc: DocumentFacts) -> Decision | None:
    if ctx.action not in DOCUMENT_ACTIONS or not ctx.qualities & READ_STANDINGS:
        return None
    rule = _filter_for(ctx).hiding_rule(doc)
    if rule is None:
        return None
    return Decision.hide(rule, "no such document")


def _document_capability(ctx: _Ctx, doc: DocumentFacts) -> Decision | None:
    if CAPABILITIES[ctx.action] & (ctx.qualities | _document_qualities(ctx, doc)):
        return None
    if ctx.action is Action.DELETE:
        return Decision.deny("not-allowed", "only the document's author may delete it")
    if ctx.action in CLINICAL_READS:
        return _explain_refusal(ctx)
    return Decision.deny(
        "not-allowed", f"{ctx.action.value} is not allowed to a {ctx.actor.role} on this document"
    )


def _filing_scope(ctx: _Ctx, doc: DocumentFacts) -> Decision | None:
    if ctx.action is not Action.FILE:
        return None
    scope = FILING_SCOPES.get(ctx.actor.role)
    if scope is None or not scope.admits(doc):
        return Decision.deny(
            "filing-scope",
            f"a {ctx.actor.role} may not file a document of class {doc.class_code}"
            f" / type {doc.type_code}",
        )
    for label in sorted(doc.labels & VISIBILITY_CODES):
        if ctx.actor.role not in LABELS_AT_FILING[label]:
            return Decision.deny(
                "label-not-settable", f"a {ctx.actor.role} may not file a document as {label}"
            )
    return None


DOCUMENT_RULES = (_document_capability, _filing_scope)


def _granted(ctx: _Ctx, doc: DocumentFacts | None) -> Decision:
    held = ctx.qualities | (_document_qualities(ctx, doc) if doc is not None else frozenset())
    allowed = CAPABILITIES[ctx.action] & held
    quality = next((q for q in QUALITY_PRIORITY if q in allowed), None)
    if quality is None:  # record-level pass on a document quality not yet confirmed
        return Decision.allow("record-level", "record-level rules pass; check the document")
    rule = quality.value
    if quality is Q.AUTHORISED and ctx.authorisation is not None:
        care_team = any(s == FINESS_SYSTEM for s, _ in ctx.authorisation.actors)
        rule = "care-team" if care_team else "authorised-professional"
    if quality is Q.EMERGENCY:
        rule = f"emergency-{ctx.access.mode.value}"
    return Decision.allow(rule, f"{ctx.action.value} permitted as {rule}")


# ----------------------------------------------------------------------- entry points


def _context(
    actor: Actor,
    access: AccessContext,
    action: Action,
    patient: PatientFacts,
    consents: Iterable[Mapping[str, Any]] | ConsentFacts,
    now: datetime,
) -> _Ctx:
    facts = (
        consents
        if isinstance(consents, ConsentFacts)
        else parse_consents(consents, patient.id, now)
    )
    purpose = PURPOSE_BY_MODE[access.mode]
    named = actor.role in PROFESSIONAL_ROLES or actor.role in ESTABLISHMENT_ROLES
    auth = facts.authorisation(actor_ids(actor), purpose) if named else None
    qualities = _qualities(actor, access, patient, facts, auth)
    return _Ctx(actor, access, action, patient, facts, now, purpose, auth, qualities)


def _decide(ctx: _Ctx, document: DocumentFacts | None) -> Decision:
    return _Decider(ctx)(document)


def decide(
    actor: Actor,
    access: AccessContext,
    action: Action,
    patient: PatientFacts,
    consents: Iterable[Mapping[str, Any]] | ConsentFacts,
    now: datetime,
    document: DocumentFacts | None = None,
) -> Decision:
    """The DMP access decision. `consents`: the patient's Consent resources (dicts; any
    status, inactive ones are ignored) or an already parsed `ConsentFacts`. `now` must be
    timezone-aware."""
    return _decide(_context(actor, access, action, patient, consents, now), document)


def decider(
    actor: Actor,
    access: AccessContext,
    action: Action,
    patient: PatientFacts,
    consents: Iterable[Mapping[str, Any]] | ConsentFacts,
    now: datetime,
) -> Callable[[DocumentFacts | None], Decision]:
    """`decide` for one actor, action, record and instant, then each document in turn:
    what depends on the record alone is worked out once (a page of search results is
    checked document by document)."""
    return _Decider(_context(actor, access, action, patient, consents, now))


class _Decider:
    """`_decide` for one context, document after document: the rules that do not read the
    document (request, actor and record rules) are evaluated once, in the same order."""

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.before = request_refusal(ctx.actor, ctx.access, ctx.action) or next(
            (d for rule in ACTOR_RULES if (d := rule(ctx)) is not None), None
        )
        self.record: Decision | None = None
        self.filter: VisibilityFilter | None = None
        if self.before is not None:
            return  # decided for every document
        self.record = next((d for rule in RECORD_RULES if (d := rule(ctx)) is not None), None)
        reads = ctx.action in DOCUMENT_ACTIONS and bool(ctx.qualities & READ_STANDINGS)
        self.filter = _filter_for(ctx) if reads else None

    def __call__(self, document: DocumentFacts | None) -> Decision:
        if self.before is not None:
            return self.before
        hidden_by = (
            self.filter.hiding_rule(document)
            if document is not None and self.filter is not None
            else None
        )
        if hidden_by is not None:
            return Decision.hide(hidden_by, "no such document")
        if self.record is not None:
            return self.record
        if document is not None:
            for doc_rule in DOCUMENT_RULES:
                if (decision := doc_rule(self.ctx, document)) is not None:
                    return decision
        return _granted(self.ctx, document)


def sees(
    actor: Actor,
    access: AccessContext,
    read_action: Action,
    patient: PatientFacts,
    consents: Iterable[Mapping[str, Any]] | ConsentFacts,
    now: datetime,
    document: DocumentFacts | None = None,
) -> bool:
    """Whether the actor may know this resource exists: they may read it (`read_action`),
    or, for a document, they filed it (author, filing establishment, own deposit) and it
    is not hidden from them. Anything else about such a resource is answered as for an
    unknown id."""
    ctx = _context(actor, access, read_action, patient, consents, now)
    if _decide(ctx, document).permit:
        return True
    if document is None or actor.role not in ROLES:
        return False
    if any(rule(ctx) is not None for rule in ACTOR_RULES):
        return False
    return _visibility(ctx, document) is None and bool(_document_qualities(ctx, document))


def visibility_filter(
    actor: Actor,
    access: AccessContext,
    patient: PatientFacts,
    consents: Iterable[Mapping[str, Any]] | ConsentFacts,
    now: datetime,
) -> VisibilityFilter:
    """The DocumentReference search filter for this actor on this record; `match_nothing`
    when a search is not permitted at all (the caller should have answered 403 already)."""
    ctx = _context(actor, access, Action.SEARCH, patient, consents, now)
    if _decide(ctx, None).permit:
        return _filter_for(ctx)
    return VisibilityFilter(patient.id, match_nothing=True)


# The statuses `authorisation_status` answers (TD0.2's "authorisation of the actor").
AUTHORISED, NOT_AUTHORISED = "authorised", "not-authorised"


def authorisation_status(
    actor: Actor,
    patient: PatientFacts,
    consents: Iterable[Mapping[str, Any]] | ConsentFacts,
    now: datetime,
) -> Decision:
    """A professional's own standing towards the record, in normal access mode: permit
    with the rule `treating-physician`, `authorised-professional` or `care-team`, or
    refused `not-authorised`. The caller has already been allowed `read-authorisation`,
    which a block refuses: a blocked professional never reaches this. Habilitation by
    profession and masking are per document and are not part of the status."""
    ctx = _context(actor, AccessContext(), Action.SEARCH, patient, consents, now)
    if Q.TREATING in ctx.qualities:
        return Decision.allow(Q.TREATING.value, "the record's treating physician")
    if Q.AUTHORISED in ctx.qualities and ctx.authorisation is not None:
        care_team = any(s == FINESS_SYSTEM for s, _ in ctx.authorisation.actors)
        rule = "care-team" if care_team else "authorised-professional"
        return Decision.allow(rule, "authorised by the patient (R.1111-41)")
    return Decision.no_access(NOT_AUTHORISED, "the patient has not authorised this professional")


def label_actions(before: Iterable[str], after: Iterable[str]) -> list[Action]:
    """The policy actions a securityLabel change amounts to (PATCH of DocumentReference):
    each must be permitted for the patch to apply."""
    old, new = set(before) & VISIBILITY_CODES, set(after) & VISIBILITY_CODES
    table = {
        (MASQUE_PS, True): Action.MASK,
        (MASQUE_PS, False): Action.UNMASK,
        (INVISIBLE_PATIENT, True): Action.SET_INVISIBLE_PATIENT,
        (INVISIBLE_PATIENT, False): Action.LIFT_INVISIBLE_PATIENT,
        (INVISIBLE_REPRESENTANTS_LEGAUX, True): Action.SET_INVISIBLE_LEGAL_REP,
        (INVISIBLE_REPRESENTANTS_LEGAUX, False): Action.LIFT_INVISIBLE_LEGAL_REP,
    }
    added = [table[(c, True)] for c in sorted(new - old)]
    removed = [table[(c, False)] for c in sorted(old - new)]
    return added + removed
