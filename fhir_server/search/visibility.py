"""The index terms a document-visibility filter is compiled against (pure).

The access-control layer (`fhir_server/policy/visibility.py`: VisibilityFilter,
LabelRule) hands search a filter with these documented fields, read by name so `search`
and `storage` do not import `policy`:

    match_nothing: bool; patient: str; allowed_classes: frozenset[str] | None;
    exclude: [rule(code, system, unless_author_rpps, only_if_filed_after: datetime|None)];
    invert: bool (select the patient's documents the rest does NOT admit)

A document is hidden by a rule when it carries the label <system>|<code>, no author of
it has that RPPS, and (if set) it was filed (index date `filed`: the server's filing
instant, never the document's own `date`) after the cutoff or has no filing instant. `sqlite_search.visibility_sql` and `mongo_search.visibility_mongo` compile it;
the Gate re-checks every result (`access.searches.visible`), as defence in depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.search import tokens
from fhir_server.search.dates import render

RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
# the date index parameter holding the filing instant (see `search.params`)
FILED_PARAM = "filed"


@dataclass(frozen=True)
class VisibilityParams:
    """The index parameters holding a document's facts in one resource type's rows."""

    label: str = "security-label"
    author: str = "author:identifier"
    class_code: str = "category"
    filed: str = FILED_PARAM


# a resource derived from a document carries the document's facts under names of its own
# (its `category` is the lab category, not the document class): `fhir.derived`
DERIVED_PARAMS = VisibilityParams("security-label", "document-author", "document-class")
VISIBILITY_PARAMS: dict[str, VisibilityParams] = {
    "DocumentReference": VisibilityParams(),
    "Observation": DERIVED_PARAMS,
    "DiagnosticReport": DERIVED_PARAMS,
    "Condition": DERIVED_PARAMS,
    "AllergyIntolerance": DERIVED_PARAMS,
    "MedicationStatement": DERIVED_PARAMS,
    "Procedure": DERIVED_PARAMS,
    "Immunization": DERIVED_PARAMS,
    # laboratory samples and isolates (CR-BIO)
    "Specimen": DERIVED_PARAMS,
}


def visibility_params(rtype: str) -> VisibilityParams:
    return VISIBILITY_PARAMS.get(rtype, VisibilityParams())


def visibility_terms(
    rule: Any, rtype: str = "DocumentReference"
) -> tuple[str, str | None, str | None]:
    """(label token term, exempt-author token term, filing cutoff instant) of one rule."""
    names = visibility_params(rtype)
    label = tokens.term(names.label, rule.system, rule.code)
    rpps = getattr(rule, "unless_author_rpps", None)
    author = tokens.term(names.author, RPPS_SYSTEM, rpps) if rpps else None
    after = getattr(rule, "only_if_filed_after", None)
    return label, author, render(after) if after is not None else None
