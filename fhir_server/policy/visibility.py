"""Which documents an actor may see, as data the store can compile into its query.

`VisibilityFilter` is the contract with the storage layer: a DocumentReference of patient
`patient` is **visible** iff

    not match_nothing
    and (allowed_classes is None or class_code in allowed_classes)
    and for every rule r in exclude: not r.hides(document)

where `r.hides(document)` is

    r.code in document's TRE_A07 securityLabel codes
    and (r.unless_author_rpps is None or r.unless_author_rpps not in document author RPPS)
    and (r.only_if_filed_after is None
         or document filing date is missing or > r.only_if_filed_after)

Fields of the document it reads, and where they live in a DocumentReference:

- class_code: `category.coding[system=TRE_A03].code` (index token `category`);
- security labels: `securityLabel.coding[system=TRE_A07].code` (token `security-label`,
  value "<VISIBILITY_SYSTEM>|<code>");
- author RPPS: `contained` Practitioner `identifier[system=urn:oid:1.2.250.1.71.4.2.1]`
  referenced from `author` (store it as its own indexed list);
- filing instant: the server's `filed-at` extension (index date `filed`), the one the
  policy reads (`facts.filed_at`): never the document's own `date`.

A store compiles it, e.g. for Mongo (field names illustrative):

    {"patient": f.patient, "class": {"$in": [...]},            # if allowed_classes
     "$nor": [{"labels": r.code,
               "authors": {"$ne": r.unless_author_rpps},        # if set
               "$or": [{"filed": {"$gt": cutoff}}, {"filed": None}]}  # if only_if_filed_after
              for r in f.exclude]}

or SQL: `AND NOT (has_label(:code) AND NOT has_author(:rpps) AND (date > :cutoff OR date IS
NULL))` per rule. `admits(document)` is the reference semantics: test the compiled query
against it. `decide()` uses the same filter for reads, so a read and a search never disagree.

`inverted()` is the same filter turned round: the record's documents this actor may NOT
see (the audit trail shown to the patient leaves out the events that name them).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from fhir_server.policy.model import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    VISIBILITY_SYSTEM,
    DocumentFacts,
)

# Rule ids (Decision.rule) for each reason a document is hidden.
HIDDEN_RULES = {
    MASQUE_PS: "masked-for-professionals",
    INVISIBLE_PATIENT: "invisible-to-patient",
    INVISIBLE_REPRESENTANTS_LEGAUX: "invisible-to-legal-representatives",
}
HIDDEN_CLASS_RULE = "class-not-habilitated"
EMBARGO_NOTICE_DAYS = 14  # the patient is told after two weeks (R.1111-53)


def minus_one_month(instant: datetime) -> datetime:
    """The same instant one calendar month earlier, the day clamped to the month's length
    (31 March -> 28/29 February)."""
    year, month = (instant.year, instant.month - 1) if instant.month > 1 else (instant.year - 1, 12)
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


def embargo_cutoff(now: datetime) -> datetime:
    """INVISIBLE_PATIENT has lapsed for documents filed at or before this instant.

    "Visible by itself one month after filing" (R.1111-53) is computed as `filed <= now -
    1 month`, one formula for reads and for the store query so they cannot disagree.
    Because of the day clamp a document filed on 31 January lapses on 1 March rather
    than 28 February: the embargo is never shorter than a calendar month.
    """
    return minus_one_month(now)


def embargo_active(filed_at: datetime | None, now: datetime) -> bool:
    # **decision**: an unknown filing date keeps the embargo (fail closed).
    return filed_at is None or filed_at > embargo_cutoff(now)


@dataclass(frozen=True)
class LabelRule:
    """Exclude documents carrying TRE_A07 `code`, except those authored by
    `unless_author_rpps`, and (if set) only those filed after `only_if_filed_after`."""

    code: str
    unless_author_rpps: str | None = None
    only_if_filed_after: datetime | None = None
    system: str = VISIBILITY_SYSTEM

    def hides(self, doc: DocumentFacts) -> bool:
        if self.code not in doc.labels:
            return False
        if self.unless_author_rpps is not None and self.unless_author_rpps in doc.author_rpps:
            return False
        if self.only_if_filed_after is None:
            return True
        return doc.filed_at is None or doc.filed_at > self.only_if_filed_after


@dataclass(frozen=True)
class VisibilityFilter:
    patient: str
    match_nothing: bool = False
    allowed_classes: frozenset[str] | None = None
    exclude: tuple[LabelRule, ...] = ()
    # the record's documents that the filter above does NOT admit
    invert: bool = False

    def inverted(self) -> VisibilityFilter:
        return VisibilityFilter(
            self.patient, self.match_nothing, self.allowed_classes, self.exclude, invert=True
        )

    @property
    def hides_nothing(self) -> bool:
        return not self.match_nothing and self.allowed_classes is None and not self.exclude

    def hiding_rule(self, doc: DocumentFacts) -> str | None:
        """The rule id that hides `doc` from this actor, or None when it is visible."""
        if self.match_nothing:
            return "no-access"
        if self.allowed_classes is not None and doc.class_code not in self.allowed_classes:
            return HIDDEN_CLASS_RULE
        return next((HIDDEN_RULES[r.code] for r in self.exclude if r.hides(doc)), None)

    def admits(self, doc: DocumentFacts) -> bool:
        return (self.hiding_rule(doc) is None) != self.invert
