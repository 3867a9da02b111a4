"""The DMP rule matrix: actor x action x label x access mode, as an explicit table.

Each cell is one character per label column, in this order:
none, MASQUE_PS, INVISIBLE_PATIENT inside its month, INVISIBLE_PATIENT after its month,
INVISIBLE_REPRESENTANTS_LEGAUX.

    P = permitted (200)   F = refused (403)   H = hidden (404, existence not disclosed)

A refusal that does not depend on the document (the role may never do this, or the access
mode is read-only) comes before visibility: it is the same answer for a hidden document and
for one that does not exist, so it discloses nothing and stays F.

For `search`, P/H say whether that document is in the actor's results (decide(search)
permits and the visibility filter admits it); F = the search itself is refused.
For `find` (find-own, the feeding profile), P/H say whether a document the actor filed
(its author, or its custodian establishment) with that label is found; F = refused.
For `file`, the column is the label the actor puts on the document it files (a patient
files a class 90 EXPPAT_3, Assurance Maladie a class 60 REMB, others a class 10 report).
The table is written from dmp-rules.md by hand, never computed from the code under test.

Fixed cast (fixtures.py): the document's author is `author` (authorised); `blocked` was
authorised, then blocked; `care_team` is authorised through its establishment's FINESS;
`admin` works in that same establishment. No emergency opt-out here (see test_rules.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fhir_server.policy import Action, Decision, DocumentFacts, decide, visibility_filter
from fhir_server.policy.decide import decider, sees
from tests.policy.fixtures import (
    ACTORS,
    CONSENTS,
    LABEL_COLUMNS,
    MODES,
    NOW,
    PATIENT,
    doc,
)

ACTIONS = ("read", "search", "file", "mask", "unmask", "delete", "consent", "audit", "find")
ALL_F = " ".join(["FFFFF"] * len(ACTIONS))

# fmt: off
#                          read  search file  mask  unmask delete consent audit find
EXPECTED: dict[tuple[str, str], str] = {
    ("patient", "normal"):      "PPHPP PPHPP PPFFF PPHPP PPHPP FFFFF PPPPP PPPPP FFFFF",
    ("patient", "btg"):         ALL_F,
    ("patient", "c15"):         ALL_F,
    ("legal_rep", "normal"):    "PPHPH PPHPH PPFFF PPHPH PPHPH FFFFF PPPPP PPPPP FFFFF",
    ("legal_rep", "btg"):       ALL_F,
    ("legal_rep", "c15"):       ALL_F,
    ("treating", "normal"):     "PPPPP PPPPP PPPPP PPPPP PPPPP FFFFF PPPPP PPPPP PPPPP",
    ("treating", "btg"):        "PPPPP PPPPP FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP PPPPP",
    ("treating", "c15"):        ALL_F,
    ("authorised", "normal"):   "PHPPP PHPPP PPPPP FHFFF FHFFF FHFFF FFFFF FFFFF PPPPP",
    ("authorised", "btg"):      "PHPPP PHPPP FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("authorised", "c15"):      ALL_F,
    ("unauthorised", "normal"): "FFFFF FFFFF PPPPP FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("unauthorised", "btg"):    "PHPPP PHPPP FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("unauthorised", "c15"):    ALL_F,
    ("blocked", "normal"):      ALL_F,
    ("blocked", "btg"):         ALL_F,
    ("blocked", "c15"):         ALL_F,
    ("care_team", "normal"):    "PHPPP PHPPP PPPPP FHFFF FHFFF FHFFF FFFFF FFFFF PPPPP",
    ("care_team", "btg"):       "PHPPP PHPPP FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("care_team", "c15"):       ALL_F,
    ("author", "normal"):       "PPPPP PPPPP PPPPP FFFFF FFFFF PPPPP FFFFF FFFFF PPPPP",
    ("author", "btg"):          "PPPPP PPPPP FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("author", "c15"):          ALL_F,
    ("admin", "normal"):        "FFFFF FFFFF PPPPP FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("admin", "btg"):           ALL_F,
    ("admin", "c15"):           ALL_F,
    ("system", "normal"):       "FFFFF FFFFF PPPPP FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("system", "btg"):          ALL_F,
    ("system", "c15"):          ALL_F,
    ("samu", "normal"):         "FFFFF FFFFF PPPPP FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("samu", "btg"):            ALL_F,
    ("samu", "c15"):            "PHPPP PHPPP FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP",
    ("cnam", "normal"):         "FFFFF FFFFF PPFFF FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF",
    ("cnam", "btg"):            ALL_F,
    ("cnam", "c15"):            ALL_F,
    ("insurer", "normal"):      ALL_F,
    ("insurer", "btg"):         ALL_F,
    ("insurer", "c15"):         ALL_F,
    ("auditor", "normal"):      "FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF FFFFF PPPPP FFFFF",
    ("auditor", "btg"):         ALL_F,
    ("auditor", "c15"):         ALL_F,
}
# fmt: on

ACTION_OF = {
    "read": Action.READ,
    "mask": Action.MASK,
    "unmask": Action.UNMASK,
    "delete": Action.DELETE,
    "consent": Action.WRITE_CONSENT,
    "audit": Action.READ_AUDIT,
}
FILED_CLASS = {
    "patient": ("90", "EXPPAT_3"),
    "legal_rep": ("90", "EXPPAT_3"),
    "cnam": ("60", "REMB"),
}


def _code(decision: Decision) -> str:
    if decision.permit:
        assert decision.status == 200 and not decision.hidden
        return "P"
    if decision.hidden:
        assert decision.status == 404
        return "H"
    assert decision.status == 403, decision
    return "F"


def _filed(actor_name: str, labels: frozenset[str]) -> DocumentFacts:
    class_code, type_code = FILED_CLASS.get(actor_name, ("10", "11488-4"))
    rpps = ACTORS[actor_name].rpps
    return doc(
        labels,
        filed_days_ago=0,
        authors=frozenset({rpps}) if rpps else frozenset({"10000000099"}),
        class_code=class_code,
        type_code=type_code,
        filed_by_patient=actor_name in ("patient", "legal_rep"),
    )


def _outcome(actor_name: str, mode: str, action: str, column: str) -> str:
    actor, access, document = ACTORS[actor_name], MODES[mode], LABEL_COLUMNS[column]
    if action == "search":
        decision = decide(actor, access, Action.SEARCH, PATIENT, CONSENTS, NOW)
        if not decision.permit:
            return _code(decision)
        vf = visibility_filter(actor, access, PATIENT, CONSENTS, NOW)
        return "P" if vf.admits(document) else "H"
    if action == "find":
        decision = decide(actor, access, Action.FIND_OWN, PATIENT, CONSENTS, NOW)
        if not decision.permit:
            return _code(decision)
        own = replace(_filed(actor_name, document.labels), custodian_finess=actor.organization)
        return "P" if sees(actor, access, Action.READ, PATIENT, CONSENTS, NOW, own) else "H"
    if action == "file":
        filed = _filed(actor_name, document.labels)
        return _code(decide(actor, access, Action.FILE, PATIENT, CONSENTS, NOW, filed))
    target = (
        document if ACTION_OF[action] not in (Action.WRITE_CONSENT, Action.READ_AUDIT) else None
    )
    return _code(decide(actor, access, ACTION_OF[action], PATIENT, CONSENTS, NOW, target))


def test_table_covers_every_actor_and_mode() -> None:
    assert {a for a, _ in EXPECTED} == set(ACTORS)
    assert {m for _, m in EXPECTED} == set(MODES)
    assert len(EXPECTED) == len(ACTORS) * len(MODES)


@pytest.mark.parametrize(("actor_name", "mode"), sorted(EXPECTED))
def test_rule_matrix(actor_name: str, mode: str) -> None:
    expected_cells = EXPECTED[(actor_name, mode)].split()
    actual_cells = [
        "".join(_outcome(actor_name, mode, action, column) for column in LABEL_COLUMNS)
        for action in ACTIONS
    ]
    mismatches = {
        action: f"expected {exp} got {act}"
        for action, exp, act in zip(ACTIONS, expected_cells, actual_cells, strict=True)
        if exp != act
    }
    assert not mismatches, f"{actor_name}/{mode}: {mismatches}"


@pytest.mark.parametrize(("actor_name", "mode"), sorted(EXPECTED))
def test_a_decider_decides_as_decide(actor_name: str, mode: str) -> None:
    """`decider` (a page of results checked one document after another) gives, for every
    action and label column, the decision `decide` gives."""
    actor, access = ACTORS[actor_name], MODES[mode]
    for action in {*ACTION_OF.values(), Action.SEARCH, Action.FIND_OWN}:
        judge = decider(actor, access, action, PATIENT, CONSENTS, NOW)
        for document in [None, *LABEL_COLUMNS.values()]:
            expected = decide(actor, access, action, PATIENT, CONSENTS, NOW, document)
            assert judge(document) == expected, (action, document)
