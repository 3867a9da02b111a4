"""Search plans: a parsed, validated query, independent of any database (pure).
Minimal first cut (identifier, _id, patient); the search issue extends it."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.errors import bad_request
from fhir_server.fhir.numbers import capped

TOKEN_PARAMS = {"identifier"}
REF_PARAMS = {"patient", "subject"}
RESULT_PARAMS = {"_count", "_format", "_pretty"}


@dataclass(frozen=True)
class Clause:
    """OR of terms within one parameter; a plan ANDs its clauses."""

    kind: str  # "id" | "token" | "ref"
    terms: tuple[str, ...]


@dataclass(frozen=True)
class SearchPlan:
    rtype: str
    clauses: tuple[Clause, ...] = ()
    count: int = 50
    cursor: str | None = None


@dataclass
class SearchResult:
    entries: list = field(default_factory=list)
    next_cursor: str | None = None
    total: int | None = None


def _ref_term(param: str, value: str) -> str:
    return f"patient|{value if '/' in value else 'Patient/' + value}"


# bounds on one query: SQLite refuses deeper expression trees and more bound variables
# (a 2000-parameter query was a 503 "database unavailable"), and no client needs more
MAX_PARAMS = 50
MAX_VALUES = 500


def check_size(params: list[tuple[str, str]]) -> None:
    if len(params) > MAX_PARAMS:
        raise bad_request(f"A search takes at most {MAX_PARAMS} parameters", code="too-costly")
    if sum(value.count(",") + 1 for _, value in params) > MAX_VALUES:
        raise bad_request(f"A search takes at most {MAX_VALUES} values", code="too-costly")


def parse_query(
    rtype: str, params: list[tuple[str, str]], *, default_count: int = 50, max_count: int = 1000
) -> SearchPlan:
    check_size(params)
    clauses: list[Clause] = []
    count, cursor = default_count, None
    for name, value in params:
        if name == "_count":
            found = capped(value, max_count)
            if found is None:
                raise bad_request(f"_count must be a whole number, got {value!r}", "_count")
            count = found
        elif name == "_cursor":
            cursor = value
        elif name in RESULT_PARAMS:
            continue
        elif name == "_id":
            clauses.append(Clause("id", tuple(value.split(","))))
        elif name in TOKEN_PARAMS:
            clauses.append(Clause("token", tuple(f"{name}|{v}" for v in value.split(","))))
        elif name in REF_PARAMS:
            clauses.append(Clause("ref", tuple(_ref_term(name, v) for v in value.split(","))))
        else:
            raise bad_request(f"Unknown search parameter {name!r} for {rtype}", name)
    return SearchPlan(rtype, tuple(clauses), count, cursor)
