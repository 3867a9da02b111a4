"""Focused rules: the rule id that decides, and the cases the matrix does not span."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.auth.actor import AccessContext, AccessMode, Actor
from fhir_server.policy import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    Action,
    RecordStatus,
    decide,
    embargo_active,
    embargo_cutoff,
    label_actions,
    parse_consents,
    visibility_filter,
)
from fhir_server.policy.decide import authorisation_status
from tests.policy.fixtures import (
    ACTORS,
    AUTHOR,
    CARE_TEAM_FINESS,
    CONSENTS,
    GP,
    MODES,
    NOW,
    PATIENT,
    PID,
    STRANGER,
    consent,
    doc,
)

NORMAL, BTG, C15 = MODES["normal"], MODES["btg"], MODES["c15"]


def rule(actor: str, action: Action, *, access=NORMAL, consents=None, patient=PATIENT, d=None):
    decision = decide(
        ACTORS[actor], access, action, patient, CONSENTS if consents is None else consents, NOW, d
    )
    return decision.rule


# -- who is refused, and by which rule ---------------------------------------------


def test_rule_ids_of_refusals() -> None:
    assert rule("insurer", Action.READ) == "forbidden-role"
    assert rule("blocked", Action.READ) == "consent-block"
    assert rule("blocked", Action.READ, access=BTG) == "consent-block"
    assert rule("blocked", Action.FILE) == "consent-block"
    assert rule("unauthorised", Action.READ) == "no-authorisation"
    assert rule("patient", Action.READ, access=BTG) == "access-mode-role"
    assert rule("treating", Action.READ, access=C15) == "access-mode-role"
    assert rule("admin", Action.READ) == "not-allowed"
    assert rule("authorised", Action.FILE, access=BTG) == "emergency-read-only"


def test_rule_ids_of_grants() -> None:
    assert rule("patient", Action.READ, d=doc()) == "holder"
    assert rule("treating", Action.READ, d=doc()) == "treating-physician"
    assert rule("authorised", Action.READ, d=doc()) == "authorised-professional"
    assert rule("care_team", Action.READ, d=doc()) == "care-team"
    assert rule("unauthorised", Action.READ, access=BTG, d=doc()) == "emergency-bris_de_glace"
    assert rule("samu", Action.READ, access=C15, d=doc()) == "emergency-centre_15"
    assert rule("author", Action.DELETE, d=doc()) == "author"
    assert rule("auditor", Action.READ_AUDIT) == "auditor"


def test_bris_de_glace_without_justification_is_refused() -> None:
    bare = AccessContext(AccessMode.BRIS_DE_GLACE, None)
    assert rule("unauthorised", Action.READ, access=bare) == "justification-required"


def test_hidden_documents_are_404_with_hidden_flag() -> None:
    d = decide(
        ACTORS["authorised"],
        NORMAL,
        Action.READ,
        PATIENT,
        CONSENTS,
        NOW,
        doc(frozenset({MASQUE_PS})),
    )
    assert (d.permit, d.status, d.hidden, d.rule) == (False, 404, True, "masked-for-professionals")


# -- emergency opt-out ---------------------------------------------------------------

BTG_OPT_OUT = [*CONSENTS, consent("deny", purpose="BTG", cid="no-btg")]
C15_OPT_OUT = [*CONSENTS, consent("deny", purpose="ETREAT", cid="no-c15")]


def test_break_glass_refused_when_patient_opposed() -> None:
    assert (
        rule("unauthorised", Action.READ, access=BTG, consents=BTG_OPT_OUT) == "emergency-opposed"
    )
    # the opposition to break-glass says nothing about centre 15
    assert rule("samu", Action.READ, access=C15, consents=BTG_OPT_OUT, d=doc()) == (
        "emergency-centre_15"
    )


def test_centre_15_refused_when_patient_opposed() -> None:
    assert rule("samu", Action.READ, access=C15, consents=C15_OPT_OUT) == "emergency-opposed"
    assert rule("unauthorised", Action.READ, access=BTG, consents=C15_OPT_OUT, d=doc()) == (
        "emergency-bris_de_glace"
    )


def test_opt_out_does_not_remove_an_authorisation() -> None:
    # **decision**: the opt-out refuses access *without* authorisation; an authorised or
    # treating professional who also declares an emergency keeps their ordinary rights.
    assert rule("authorised", Action.READ, access=BTG, consents=BTG_OPT_OUT, d=doc()) == (
        "authorised-professional"
    )
    assert rule("treating", Action.READ, access=BTG, consents=BTG_OPT_OUT, d=doc()) == (
        "treating-physician"
    )


def test_block_in_one_mode_only() -> None:
    only_btg = [*CONSENTS, consent("deny", rpps=STRANGER, purpose="BTG", cid="x")]
    assert rule("unauthorised", Action.READ, access=BTG, consents=only_btg) == "consent-block"
    assert rule("unauthorised", Action.FILE, consents=only_btg, d=doc(filed_days_ago=0)) == (
        "health-professional"
    )


# -- consents --------------------------------------------------------------------------


def test_block_beats_treating_physician_and_permit() -> None:
    blocked_gp = [*CONSENTS, consent("permit", rpps=GP), consent("deny", rpps=GP, cid="b")]
    assert rule("treating", Action.READ, consents=blocked_gp) == "consent-block"
    assert rule("treating", Action.READ_AUDIT, consents=blocked_gp) == "consent-block"


def test_establishment_block_covers_its_staff() -> None:
    blocked_org = [*CONSENTS, consent("deny", finess=CARE_TEAM_FINESS, cid="b")]
    assert rule("care_team", Action.READ, consents=blocked_org) == "consent-block"
    assert rule("admin", Action.FILE, consents=blocked_org) == "consent-block"


def test_inactive_or_foreign_consents_have_no_effect() -> None:
    inactive_permit = [consent("permit", rpps=STRANGER, status="inactive")]
    assert rule("unauthorised", Action.READ, consents=inactive_permit) == "no-authorisation"
    other_patient = [consent("permit", rpps=STRANGER, patient="p2")]
    assert rule("unauthorised", Action.READ, consents=other_patient) == "no-authorisation"
    inactive_block = [*CONSENTS, consent("deny", rpps=AUTHOR, status="inactive", cid="x")]
    assert rule("author", Action.READ, consents=inactive_block, d=doc()) == (
        "authorised-professional"
    )


def test_consent_period_is_honoured() -> None:
    expired = consent("permit", rpps=STRANGER)
    expired["provision"]["period"] = {"end": "2026-01-31T00:00:00Z"}
    assert rule("unauthorised", Action.READ, consents=[expired]) == "no-authorisation"
    broken = consent("deny", rpps=AUTHOR)
    broken["provision"]["period"] = {"start": "not a date"}
    # a deny we cannot read still applies (fail closed)
    assert rule("author", Action.READ, consents=[*CONSENTS, broken]) == "consent-block"


def test_unusable_actor_does_not_become_everyone() -> None:
    odd = consent("deny", cid="x")
    odd["provision"]["actor"] = [{"reference": {"reference": "Practitioner/123"}}]
    facts = parse_consents([odd], PID, NOW)
    assert facts.provisions == ()


def test_record_opinion_latest_wins() -> None:
    facts = parse_consents(
        [
            consent("permit", when="2025-01-01T00:00:00Z"),
            consent("deny", when="2026-01-01T00:00:00Z"),
        ],
        PID,
        NOW,
    )
    assert facts.record_opinion() == "opposed"


# -- record lifecycle ------------------------------------------------------------------

CLOSED = replace(PATIENT, record=RecordStatus.CLOSED)


@pytest.mark.parametrize(
    ("actor", "action", "expected"),
    [
        ("author", Action.FILE, "record-closed"),
        ("patient", Action.FILE, "record-closed"),
        ("treating", Action.MASK, "record-closed"),
        ("treating", Action.WRITE_CONSENT, "record-closed"),
        ("treating", Action.REOPEN_RECORD, "not-allowed"),  # only the holder reopens
        ("patient", Action.MASK, "holder"),
        ("patient", Action.REOPEN_RECORD, "holder"),
        ("legal_rep", Action.WRITE_CONSENT, "legal-representative"),
        ("treating", Action.READ, "treating-physician"),
        ("authorised", Action.READ, "authorised-professional"),
    ],
)
def test_closed_record_is_read_only_but_for_the_holder(actor, action, expected) -> None:
    target = doc(filed_days_ago=0) if action in (Action.FILE, Action.MASK, Action.READ) else None
    if actor == "patient" and action is Action.FILE:
        target = doc(filed_days_ago=0, class_code="90", type_code="EXPPAT_3")
    assert rule(actor, action, patient=CLOSED, d=target) == expected


@pytest.mark.parametrize("status", [RecordStatus.ABSENT, RecordStatus.OPPOSED])
def test_nothing_filed_without_a_record(status) -> None:
    patient = replace(PATIENT, record=status)
    d = decide(ACTORS["author"], NORMAL, Action.FILE, patient, CONSENTS, NOW, doc())
    assert (d.permit, d.status, d.rule) == (False, 404, "no-record")
    # ... but the holder can still open it (creation is a Consent)
    assert rule("patient", Action.WRITE_CONSENT, patient=patient) == "holder"


def test_close_record_by_holder_or_treating_only() -> None:
    assert rule("patient", Action.CLOSE_RECORD) == "holder"
    assert rule("treating", Action.CLOSE_RECORD) == "treating-physician"
    assert rule("authorised", Action.CLOSE_RECORD) == "not-allowed"


# -- patients, minors ------------------------------------------------------------------


def test_minor_has_no_access_of_their_own() -> None:
    minor = replace(PATIENT, minor=True)
    assert rule("patient", Action.READ, patient=minor) == "minor-no-access"
    assert rule("legal_rep", Action.READ, patient=minor, d=doc()) == "legal-representative"


def test_patient_token_for_another_record() -> None:
    other = replace(PATIENT, id="p2")
    assert rule("patient", Action.READ, patient=other) == "not-own-record"
    assert rule("legal_rep", Action.READ_AUDIT, patient=other) == "not-own-record"


# -- filing scope ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "class_code", "type_code", "expected"),
    [
        ("patient", "90", "EXPPAT_3", "holder"),
        ("patient", "11", "DOCPAT01", "holder"),
        ("patient", "10", "11488-4", "filing-scope"),
        ("cnam", "60", "REMB", "assurance-maladie"),
        ("cnam", "10", "11488-4", "filing-scope"),
        ("author", "60", "REMB", "filing-scope"),
        ("author", "90", "EXPPAT_3", "filing-scope"),
        ("author", "11", "DOCPAT01", "filing-scope"),
        ("system", "10", "11502-2", "establishment"),
        ("unauthorised", "10", "11488-4", "health-professional"),
    ],
)
def test_filing_scope(actor, class_code, type_code, expected) -> None:
    filed = doc(filed_days_ago=0, class_code=class_code, type_code=type_code)
    assert rule(actor, Action.FILE, d=filed) == expected


def test_patient_cannot_file_invisible_labels() -> None:
    filed = doc(frozenset({INVISIBLE_PATIENT}), class_code="90", type_code="EXPPAT_3")
    assert rule("patient", Action.FILE, d=filed) == "label-not-settable"


# -- habilitation matrix ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profession", "class_code", "visible"),
    [
        ("10", "52", True),
        ("21", "43", True),
        ("21", "31", False),
        ("21", "52", False),
        ("60", "31", True),
        ("60", "52", False),
    ],
)
def test_habilitation_by_profession(profession, class_code, visible) -> None:
    actor = replace(ACTORS["authorised"], profession=profession)
    d = decide(actor, NORMAL, Action.READ, PATIENT, CONSENTS, NOW, doc(class_code=class_code))
    assert d.permit is visible
    if not visible:
        assert (d.status, d.rule) == (404, "class-not-habilitated")
    vf = visibility_filter(actor, NORMAL, PATIENT, CONSENTS, NOW)
    assert vf.admits(doc(class_code=class_code)) is visible


def test_profession_without_habilitation_is_refused() -> None:
    actor = replace(ACTORS["authorised"], profession="99")
    d = decide(actor, NORMAL, Action.SEARCH, PATIENT, CONSENTS, NOW)
    assert (d.status, d.rule) == (403, "no-habilitation")


# -- labels: who may set / lift --------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "action", "permit"),
    [
        ("author", Action.SET_INVISIBLE_PATIENT, True),
        ("treating", Action.SET_INVISIBLE_PATIENT, False),
        ("patient", Action.SET_INVISIBLE_PATIENT, False),
        ("author", Action.LIFT_INVISIBLE_PATIENT, True),
        ("treating", Action.LIFT_INVISIBLE_PATIENT, True),
        ("authorised", Action.LIFT_INVISIBLE_PATIENT, False),
        ("treating", Action.SET_INVISIBLE_LEGAL_REP, True),
        ("legal_rep", Action.SET_INVISIBLE_LEGAL_REP, False),
        ("patient", Action.PATCH_METADATA, True),
        ("author", Action.PATCH_METADATA, True),
        ("authorised", Action.PATCH_METADATA, False),
    ],
)
def test_label_setters(actor, action, permit) -> None:
    d = decide(ACTORS[actor], NORMAL, action, PATIENT, CONSENTS, NOW, doc())
    assert d.permit is permit


def test_author_delete_even_without_authorisation() -> None:
    # Authorisation gates consultation only: the author who lost it may still delete.
    stranger_doc = doc(authors=frozenset({STRANGER}))
    assert rule("unauthorised", Action.DELETE, d=stranger_doc) == "author"
    assert rule("unauthorised", Action.READ, d=stranger_doc) == "no-authorisation"


@pytest.mark.parametrize(
    ("actor", "target", "permit"),
    [
        ("author", doc(), True),
        ("authorised", doc(), False),
        ("patient", doc(filed_by_patient=True, class_code="90", authors=frozenset()), True),
        ("patient", doc(), False),
        ("admin", doc(custodian_finess=CARE_TEAM_FINESS), True),
        ("system", doc(custodian_finess=CARE_TEAM_FINESS), False),
    ],
)
def test_replacement_by_who_filed(actor, target, permit) -> None:
    d = decide(ACTORS[actor], NORMAL, Action.UPDATE, PATIENT, CONSENTS, NOW, target)
    assert d.permit is permit, d


def test_label_actions_from_a_patch() -> None:
    assert label_actions({"N"}, {"N", MASQUE_PS}) == [Action.MASK]
    assert label_actions({MASQUE_PS, INVISIBLE_PATIENT}, {INVISIBLE_REPRESENTANTS_LEGAUX}) == [
        Action.SET_INVISIBLE_LEGAL_REP,
        Action.LIFT_INVISIBLE_PATIENT,
        Action.UNMASK,
    ]


# -- embargo -----------------------------------------------------------------------------


def test_embargo_lifts_by_itself_after_a_month() -> None:
    filed = datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
    assert embargo_active(filed, datetime(2026, 3, 10, 9, 29, tzinfo=UTC))
    assert not embargo_active(filed, datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
    assert embargo_active(None, NOW)  # unknown filing date keeps it


def test_embargo_month_end_clamp_never_shortens() -> None:
    filed = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert embargo_active(filed, datetime(2026, 2, 28, 12, 0, tzinfo=UTC))
    assert not embargo_active(filed, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert embargo_cutoff(datetime(2026, 3, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert embargo_cutoff(datetime(2026, 1, 15, tzinfo=UTC)) == datetime(2025, 12, 15, tzinfo=UTC)


def test_read_and_filter_agree_on_the_embargo_boundary() -> None:
    patient = ACTORS["patient"]
    vf = visibility_filter(patient, NORMAL, PATIENT, CONSENTS, NOW)
    for minutes in (-1, 0, 1):
        d = doc(frozenset({INVISIBLE_PATIENT}))
        d = replace(d, filed_at=embargo_cutoff(NOW) + timedelta(minutes=minutes))
        read = decide(patient, NORMAL, Action.READ, PATIENT, CONSENTS, NOW, d)
        assert read.permit is vf.admits(d) is (minutes <= 0)


# -- the filter as data --------------------------------------------------------------------


def test_filter_structure_for_each_standing() -> None:
    vf = visibility_filter(ACTORS["legal_rep"], NORMAL, PATIENT, CONSENTS, NOW)
    assert [r.code for r in vf.exclude] == [INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX]
    assert vf.exclude[0].only_if_filed_after == embargo_cutoff(NOW)
    assert vf.allowed_classes is None

    vf = visibility_filter(ACTORS["authorised"], NORMAL, PATIENT, CONSENTS, NOW)
    assert [(r.code, r.unless_author_rpps) for r in vf.exclude] == [(MASQUE_PS, "10000000002")]
    assert vf.allowed_classes is not None and "52" in vf.allowed_classes

    assert visibility_filter(ACTORS["treating"], NORMAL, PATIENT, CONSENTS, NOW).exclude == ()
    for refused in ("unauthorised", "blocked", "admin", "insurer", "cnam"):
        assert visibility_filter(ACTORS[refused], NORMAL, PATIENT, CONSENTS, NOW).match_nothing


def test_search_patient_identity() -> None:
    for actor in ("unauthorised", "admin", "system", "cnam", "patient"):
        assert decide(ACTORS[actor], NORMAL, Action.SEARCH_PATIENT, PATIENT, CONSENTS, NOW).permit
    for actor in ("blocked", "insurer", "auditor"):
        assert not decide(
            ACTORS[actor], NORMAL, Action.SEARCH_PATIENT, PATIENT, CONSENTS, NOW
        ).permit


def test_unknown_role_actor_never_reaches_content() -> None:
    employer = Actor("employer", "e", rpps=GP)  # even holding the GP's RPPS
    assert rule_of(employer) == "forbidden-role"


def rule_of(actor: Actor) -> str:
    return decide(actor, NORMAL, Action.READ, PATIENT, CONSENTS, NOW, doc()).rule


def test_record_level_precheck_without_document() -> None:
    # before loading: an author-only action passes the record rules for any professional...
    pre = decide(ACTORS["unauthorised"], NORMAL, Action.DELETE, PATIENT, CONSENTS, NOW)
    assert (pre.permit, pre.rule) == (True, "record-level")
    # ...and a refusal that does not depend on the document comes out already
    pre = decide(ACTORS["patient"], NORMAL, Action.DELETE, PATIENT, CONSENTS, NOW)
    assert (pre.status, pre.rule) == (403, "not-allowed")


# -- a professional's own authorisation status (TD0.2) ------------------------------


def test_authorisation_status_names_the_basis() -> None:
    def status(actor: str) -> tuple[bool, str]:
        d = authorisation_status(ACTORS[actor], PATIENT, CONSENTS, NOW)
        return d.permit, d.rule

    assert status("treating") == (True, "treating-physician")
    assert status("authorised") == (True, "authorised-professional")
    assert status("care_team") == (True, "care-team")
    assert status("unauthorised") == (False, "not-authorised")


def test_who_may_ask_their_authorisation_status() -> None:
    assert rule("unauthorised", Action.READ_AUTHORISATION) == "health-professional"
    assert rule("samu", Action.READ_AUTHORISATION) == "health-professional"
    # a block refuses the question itself: the status of a blocked actor is never computed
    assert rule("blocked", Action.READ_AUTHORISATION) == "consent-block"
    for actor in ("patient", "admin", "system", "cnam", "auditor"):
        assert rule(actor, Action.READ_AUTHORISATION) == "not-allowed", actor


def test_only_the_holder_links_the_record_to_mon_espace_sante() -> None:
    assert decide(ACTORS["patient"], NORMAL, Action.LINK_MES, PATIENT, CONSENTS, NOW).permit
    assert decide(ACTORS["legal_rep"], NORMAL, Action.LINK_MES, PATIENT, CONSENTS, NOW).permit
    for actor in ("treating", "authorised", "system", "cnam"):
        assert rule(actor, Action.LINK_MES) == "not-allowed", actor
