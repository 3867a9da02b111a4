"""Search plans: a parsed, validated query as plain immutable data, independent of any
database (pure). `storage/sqlite_search.py` compiles a plan to SQL, `storage/
mongo_search.py` to a MongoDB filter; both must give the same answers.

A plan is the AND of its `where` conditions. Conditions are a small algebra:

- TermIn(kind, terms): the resource has one of these exact index terms ("param|value"),
  kind "tok" (tokens, laid out as `search.tokens` says) or "ref" (references).
- TermPrefix(kind, prefix): the resource has a term starting with prefix (a code in any
  system).
- TermSuffix(kind, prefix, suffix): the resource has a term starting with prefix and
  ending with suffix (any code of a system: `system|`).
- StringMatch(param, mode, value): a string index entry equal to / starting with /
  containing value (already folded, except for "exact" which targets "param:exact").
- DateMatch(param, bounds): one date entry of param satisfies every bound
  (field "lo"/"hi", operator, instant); param "_lastUpdated" targets the column.
- Has(kind, param): the resource has some entry for param (`:missing=false`).
- IdIn(ids), PatientIn(ids): on the id and compartment-owner columns.
- PatientChain(cond): the compartment owner is a live Patient matching cond
  (`patient.identifier`).
- AnyOf(parts), Not(cond).

A reverse chain (`_has:Type:param:name=value`) is not a condition the stores compile: the
access layer runs its inner search under the reader's visibility and turns it into
`IdIn` (`access/reverse_chains.py`); a store handed a plan that still holds one refuses it.

Paging is by keyset: the cursor carries the sort value and the id of the last entry of
the page, so inserting or deleting resources between pages never shifts the next page.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from fhir_server.errors import bad_request
from fhir_server.records import Stored
from fhir_server.search.params import describe_params as describe_params

TermKind = Literal["tok", "ref"]
IndexKind = Literal["tok", "ref", "str", "date"]
StringMode = Literal["prefix", "exact", "contains"]
Op = Literal["<", "<=", ">", ">="]
TotalMode = Literal["none", "estimate", "accurate"]


@dataclass(frozen=True)
class TermIn:
    kind: TermKind
    terms: tuple[str, ...]


@dataclass(frozen=True)
class TermPrefix:
    kind: TermKind
    prefix: str


@dataclass(frozen=True)
class TermSuffix:
    kind: TermKind
    prefix: str
    suffix: str


@dataclass(frozen=True)
class StringMatch:
    param: str
    mode: StringMode
    value: str


@dataclass(frozen=True)
class DateMatch:
    param: str
    bounds: tuple[tuple[Literal["lo", "hi"], Op, str], ...]


@dataclass(frozen=True)
class Has:
    kind: IndexKind
    param: str


@dataclass(frozen=True)
class IdIn:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class PatientIn:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class PatientChain:
    cond: Cond


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    cond: Cond


Cond = (
    TermIn
    | TermPrefix
    | TermSuffix
    | StringMatch
    | DateMatch
    | Has
    | IdIn
    | PatientIn
    | PatientChain
    | AnyOf
    | Not
)


@dataclass(frozen=True)
class Sort:
    """key: "_id", "_lastUpdated" or a sortable date param (sorted by its lowest instant,
    "" when absent). The id always breaks ties, in the same direction."""

    key: str = "_id"
    descending: bool = False


@dataclass(frozen=True)
class Cursor:
    value: str
    id: str


@dataclass(frozen=True)
class Include:
    source: str  # type holding the reference
    param: str  # reference param on source
    target: str  # type referenced
    reverse: bool  # _revinclude: fetch sources pointing at the matches


@dataclass(frozen=True)
class ReverseChain:
    """`_has:<source>:<param>:<name>=<value>`: the resources some `source` matching the
    inner search names in its reference `param`."""

    source: str
    param: str
    params: tuple[tuple[str, str], ...]


class UnresolvedReverseChain(ValueError):
    """A store was handed a `_has` the access layer did not resolve (a programming error)."""


def check_resolved(plan: SearchPlan) -> None:
    if plan.reverse_chains:
        raise UnresolvedReverseChain(f"_has not resolved on a {plan.rtype} search")


@dataclass(frozen=True)
class SearchPlan:
    rtype: str
    where: tuple[Cond, ...] = ()
    sort: Sort = Sort()
    count: int = 50
    cursor: Cursor | None = None
    total: TotalMode = "none"
    summary: str | None = None  # true | text | data | count | false
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    # unknown parameters ignored under lenient handling, reported in an OperationOutcome
    ignored: tuple[str, ...] = ()
    # `_has`, resolved into `where` by the access layer before the store runs the plan
    reverse_chains: tuple[ReverseChain, ...] = ()
    # binds cursors to the query that made them (filters and sort)
    fingerprint: str = ""
    # Hook for the access-control layer (`fhir_server/policy`): a structure describing
    # which resources the actor may see (security-label codes that exclude a document,
    # author RPPS values exempt from that, an INVISIBLE_PATIENT embargo cutoff, allowed
    # class codes). Each store compiler ANDs it into the query (`visibility_sql`,
    # `visibility_mongo`), so paging and totals stay correct; None = no restriction.
    visibility: Any = None


@dataclass
class SearchResult:
    entries: list[Stored] = field(default_factory=list)
    next_cursor: str | None = None
    total: int | None = None
    included: list[Stored] = field(default_factory=list)


# -- cursors -------------------------------------------------------------------------------


def _mac(fingerprint: str, value: str, id: str) -> str:
    # Not a secret-keyed MAC: the cursor only positions a page inside the query the client
    # sends anyway (filters and visibility never come from it); the check catches edited or
    # mismatched cursors so they get a 400 rather than a silently wrong page.
    return hashlib.sha256(f"{fingerprint}\x00{value}\x00{id}".encode()).hexdigest()[:16]


def encode_cursor(plan: SearchPlan, value: str, id: str) -> str:
    raw = orjson.dumps([value, id, _mac(plan.fingerprint, value, id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, id, mac = orjson.loads(raw)
        ok = all(isinstance(x, str) for x in (value, id, mac))
    except (ValueError, TypeError):
        ok = False
    if not ok or mac != _mac(fingerprint, value, id):
        raise bad_request(
            "Invalid paging cursor: it was altered or belongs to another query", "_cursor"
        )
    return Cursor(value, id)
