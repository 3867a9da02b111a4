"""Query string -> SearchPlan (pure). Names are checked against `search.params`, values
are parsed into typed conditions: nothing from the query ever reaches a database except as
a bound value inside one of the condition types of `search.plan`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fhir_server.errors import bad_request
from fhir_server.fhir.numbers import capped
from fhir_server.search import tokens
from fhir_server.search.dates import parse_range, widen
from fhir_server.search.index import fold, reference_key
from fhir_server.search.params import (
    DEFAULTS,
    IMPLIED,
    INCLUDES,
    REQUIRED,
    REVERSE_CHAINS,
    SearchParam,
    params_of,
    sortable,
)
from fhir_server.search.plan import (
    AnyOf,
    Cond,
    DateMatch,
    Has,
    IdIn,
    Include,
    Not,
    PatientChain,
    PatientIn,
    ReverseChain,
    SearchPlan,
    Sort,
    StringMatch,
    TermIn,
    TermPrefix,
    TermSuffix,
    decode_cursor,
)
from fhir_server.search.quantities import quantity_cond

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:[.:][A-Za-z][A-Za-z0-9_\-]*){0,2}")
_ID_RE = re.compile(r"[A-Za-z0-9\-\.]{1,64}")
_TYPE_RE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_DATE_PREFIX = re.compile(r"(eq|ne|lt|gt|le|ge|sa|eb|ap)?(.*)", re.S)
_SPLIT = re.compile(r"(?<!\\),")
_HAS = re.compile(r"_has:([A-Z][A-Za-z]{1,63}):([a-z][a-z0-9\-]{0,63}):(.+)", re.S)

# parameters that shape the result rather than filter it; their values are checked below
# (`_totalMethod`: fhirpy's count() hint; this server always counts a total it is asked for)
_IGNORED_CONTROLS = {"_format", "_pretty", "_totalMethod"}
_SUMMARY = {"true", "false", "text", "data", "count"}
_TOTAL = {"none", "estimate", "accurate"}
# names that are not filters, so they do not make two queries different for cursors
_NOT_FILTERS = {"_count", "_cursor", "_total", "_summary", "_elements", "_include", "_revinclude"}


@dataclass
class _Draft:
    rtype: str
    count: int
    where: list[Cond] = field(default_factory=list)
    sort: Sort = Sort()
    cursor_token: str | None = None
    total: str | None = None  # None: the client did not say
    summary: str | None = None
    elements: tuple[str, ...] = ()
    includes: list[Include] = field(default_factory=list)
    reverse_chains: list[ReverseChain] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    named: set[str] = field(default_factory=set)
    # conditions `params.IMPLIED` adds unless the client names their parameter
    implied: dict[str, str] = field(default_factory=dict)


def split_values(value: str) -> list[str]:
    """Comma = OR; `\\,` is a literal comma."""
    return [v.replace("\\,", ",") for v in _SPLIT.split(value)]


# -- value parsers, one per parameter type --------------------------------------------------


def _or(parts: list[Cond]) -> Cond:
    """OR of conditions; exact terms of one kind merge into one TermIn (one IN list)."""
    merged: dict[str, list[str]] = {}
    rest: list[Cond] = []
    for part in parts:
        if isinstance(part, TermIn):
            merged.setdefault(part.kind, []).extend(part.terms)
        else:
            rest.append(part)
    out: list[Cond] = [TermIn(k, tuple(dict.fromkeys(v))) for k, v in merged.items()]  # type: ignore[arg-type]
    out += rest
    return out[0] if len(out) == 1 else AnyOf(tuple(out))


def token_term(name: str, value: str) -> Cond:
    """One token value of a query (`search.tokens` has the term layout)."""
    if "|" not in value:
        return TermPrefix("tok", tokens.code_prefix(name, value))
    system, code = value.split("|", 1)
    if not code:
        if not system:
            raise bad_request(f"Empty token '|' in {name}", name)
        return TermSuffix("tok", f"{name}|", tokens.system_suffix(system))
    return TermIn("tok", (tokens.term(name, system, code),))


def _ref_keys(p: SearchParam, value: str, type_mod: str | None) -> list[str]:
    if "/" in value:
        key = reference_key(value)
        if key is None:
            raise bad_request(f"Invalid reference {value!r} for {p.name}", p.name)
        if type_mod and not key.startswith(f"{type_mod}/"):
            raise bad_request(f"{value!r} is not a {type_mod} reference", p.name)
        return [key]
    if not _ID_RE.fullmatch(value):
        raise bad_request(f"Invalid id {value!r} for {p.name}", p.name)
    types = (type_mod,) if type_mod else p.targets
    return [f"{t}/{value}" for t in types]


def reference_cond(p: SearchParam, values: list[str], type_mod: str | None) -> Cond:
    keys = [k for v in values for k in _ref_keys(p, v, type_mod)]
    parts: list[Cond] = []
    if p.compartment:
        patients = tuple(k[8:] for k in keys if k.startswith("Patient/"))
        if patients:
            parts.append(PatientIn(patients))
        keys = [k for k in keys if not k.startswith("Patient/")]
    if keys:
        parts.append(TermIn("ref", tuple(f"{p.name}|{k}" for k in keys)))
    return _or(parts)


def identifier_cond(p: SearchParam, values: list[str]) -> Cond:
    """`param:identifier` / `param.identifier`: the chained Patient for a compartment
    param, the indexed Reference.identifier tokens otherwise."""
    if p.compartment:
        return PatientChain(_or([token_term("identifier", v) for v in values]))
    if p.by_identifier:
        return _or([token_term(f"{p.name}:identifier", v) for v in values])
    raise bad_request(f"{p.name} cannot be searched by identifier", p.name)


_DATE_BOUNDS: dict[str, Callable[[str, str], tuple[tuple[str, str, str], ...]]] = {
    # search range [ql, qh] against a resource range [lo, hi]; see README "Search"
    "eq": lambda ql, qh: (("lo", ">=", ql), ("hi", "<=", qh)),
    "lt": lambda ql, qh: (("lo", "<", ql),),
    "gt": lambda ql, qh: (("hi", ">", qh),),
    "le": lambda ql, qh: (("lo", "<=", qh),),
    "ge": lambda ql, qh: (("hi", ">=", ql),),
    "sa": lambda ql, qh: (("lo", ">", qh),),
    "eb": lambda ql, qh: (("hi", "<", ql),),
    "ap": lambda ql, qh: (("lo", "<=", qh), ("hi", ">=", ql)),
}


def date_cond(name: str, value: str, now: datetime) -> Cond:
    m = _DATE_PREFIX.fullmatch(value)
    prefix, text = (m.group(1) or "eq", m.group(2)) if m else ("eq", value)
    rng = parse_range(text)
    if rng is None:
        raise bad_request(f"Invalid date {value!r} for {name}", name)
    ql, qh = rng
    if prefix == "ap":
        ql, qh = widen(ql, qh, now)
    if prefix == "ne":
        return Not(DateMatch(name, _DATE_BOUNDS["eq"](ql, qh)))  # type: ignore[arg-type]
    return DateMatch(name, _DATE_BOUNDS[prefix](ql, qh))  # type: ignore[arg-type]


def string_cond(name: str, value: str, modifier: str | None) -> Cond:
    if modifier == "exact":
        return StringMatch(f"{name}:exact", "exact", value)
    mode = "contains" if modifier == "contains" else "prefix"
    return StringMatch(name, mode, fold(value))  # type: ignore[arg-type]


def _missing(kind: str, name: str, value: str) -> Cond:
    if value not in ("true", "false"):
        raise bad_request(f":missing takes true or false, got {value!r}", name)
    has = Has(kind, name)  # type: ignore[arg-type]
    return Not(has) if value == "true" else has


_KIND = {
    "token": "tok",
    "uri": "tok",
    "reference": "ref",
    "string": "str",
    "date": "date",
    # quantities sit in the range index beside dates (`search.quantities`)
    "quantity": "date",
}
_MODIFIERS = {
    "token": {None, "not", "missing"},
    "uri": {None, "missing"},
    "reference": {None, "missing", "identifier"},
    "string": {None, "exact", "contains", "missing"},
    "date": {None, "missing"},
    "quantity": {None, "missing"},
}


def param_cond(
    p: SearchParam, modifier: str | None, chain: str | None, value: str, now: datetime
) -> Cond:
    name = p.name
    if modifier == "missing":
        return _missing(_KIND[p.type], name, value)
    values = split_values(value)
    if chain is not None or modifier == "identifier":
        if p.type != "reference" or (chain not in (None, "identifier")):
            raise bad_request(f"Unsupported chain {name}.{chain}", name)
        return identifier_cond(p, values)
    if p.type == "reference":
        type_mod = modifier if modifier and _TYPE_RE.fullmatch(modifier) else None
        if modifier and type_mod is None:
            raise bad_request(f"Unsupported modifier :{modifier} on {name}", name)
        if type_mod and p.targets and type_mod not in p.targets:
            raise bad_request(f"{name} cannot point at {type_mod}", name)
        return reference_cond(p, values, type_mod)
    if modifier not in _MODIFIERS[p.type]:
        raise bad_request(f"Unsupported modifier :{modifier} on {name} ({p.type})", name)
    if p.type in ("token", "uri"):
        cond = _or([token_term(name, v) for v in values])
        return Not(cond) if modifier == "not" else cond
    if p.type == "string":
        return _or([string_cond(name, v, modifier) for v in values])
    if p.type == "quantity":
        return _or([quantity_cond(name, v) for v in values])
    return _or([date_cond(name, v, now) for v in values])


def _id_cond(value: str) -> Cond:
    ids = split_values(value)
    for id in ids:
        if not _ID_RE.fullmatch(id):
            raise bad_request(f"Invalid id {id!r} in _id", "_id")
    return IdIn(tuple(ids))


# -- result parameters -----------------------------------------------------------------------


def _count(d: _Draft, value: str, max_count: int) -> None:
    found = capped(value, max_count)  # ASCII digits only: '²' is not a number here
    if found is None:
        raise bad_request(f"_count must be a whole number, got {value!r}", "_count")
    d.count = found


MAX_PARAMS = 50
MAX_VALUES = 500


def check_size(params: list[tuple[str, str]]) -> None:
    """Bound a query before it reaches the database (SQLite limits its bound variables;
    a huge query is a denial of service, never a legitimate search)."""
    if len(params) > MAX_PARAMS:
        raise bad_request(f"A search takes at most {MAX_PARAMS} parameters", code="too-costly")
    if sum(value.count(",") + 1 for _, value in params) > MAX_VALUES:
        raise bad_request(f"A search takes at most {MAX_VALUES} values", code="too-costly")


def _sort(d: _Draft, value: str) -> None:
    keys = [k for k in value.split(",") if k]
    if len(keys) != 1:
        raise bad_request("_sort takes exactly one key (the id breaks ties)", "_sort")
    key = keys[0]
    name = key.lstrip("-")
    if name not in sortable(d.rtype) or key.count("-", 0, 1) != len(key) - len(name):
        allowed = ", ".join(sortable(d.rtype))
        raise bad_request(f"Cannot sort {d.rtype} by {key!r}; sortable: {allowed}", "_sort")
    d.sort = Sort(name, key.startswith("-"))


def _choice(d: _Draft, name: str, value: str, allowed: set[str]) -> str:
    if value not in allowed:
        raise bad_request(f"{name} must be one of {', '.join(sorted(allowed))}", name)
    return value


def _elements(d: _Draft, value: str) -> None:
    names = tuple(v for v in value.split(",") if v)
    for n in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", n):
            raise bad_request(f"Invalid element name {n!r} in _elements", "_elements")
    d.elements = names


def _include(d: _Draft, name: str, value: str, strict: bool) -> None:
    spec = INCLUDES.get(value)
    reverse = name == "_revinclude"
    ok = spec is not None and (spec[2] if reverse else spec[0]) == d.rtype
    if not ok:
        if strict:
            raise bad_request(f"{name}={value} is not supported on {d.rtype}", name)
        d.ignored.append(f"{name}={value}")
        return
    assert spec is not None
    d.includes.append(Include(spec[0], spec[1], spec[2], reverse))


def _control(d: _Draft, name: str, value: str, *, max_count: int, strict: bool) -> bool:
    """Apply a result parameter; False when name is not one."""
    if name == "_count":
        _count(d, value, max_count)
    elif name == "_cursor":
        d.cursor_token = value
    elif name == "_sort":
        _sort(d, value)
    elif name == "_total":
        d.total = _choice(d, name, value, _TOTAL)
    elif name == "_summary":
        d.summary = _choice(d, name, value, _SUMMARY)
    elif name == "_elements":
        _elements(d, value)
    elif name in ("_include", "_revinclude"):
        _include(d, name, value, strict)
    elif name not in _IGNORED_CONTROLS:
        return False
    return True


# -- the parser ---------------------------------------------------------------------------


def _split_name(raw: str) -> tuple[str, str | None, str | None]:
    """name[:modifier] or name.chain (chain = the element after the dot)."""
    if "." in raw:
        base, chain = raw.split(".", 1)
        return base, None, chain
    base, _, modifier = raw.partition(":")
    return base, modifier or None, None


def _filter(d: _Draft, raw: str, value: str, *, strict: bool, now: datetime) -> None:
    base, modifier, chain = _split_name(raw)
    if base == "_id" and modifier is None and chain is None:
        d.where.append(_id_cond(value))
        d.named.add("_id")
        return
    if base == "_lastUpdated" and modifier is None and chain is None:
        d.where.append(_or([date_cond("_lastUpdated", v, now) for v in split_values(value)]))
        d.named.add("_lastUpdated")
        return
    p = params_of(d.rtype).get(base)
    if p is None:
        if strict:
            raise bad_request(f"Unknown search parameter {raw!r} for {d.rtype}", raw)
        d.ignored.append(raw)
        return
    if value == "":
        if strict:
            raise bad_request(f"Search parameter {raw!r} has no value", raw)
        d.ignored.append(raw)
        return
    d.where.append(param_cond(p, modifier, chain, value, now))
    if modifier is None and chain is None:
        for v in split_values(value):
            implied = IMPLIED.get((d.rtype, base, v.rsplit("|", 1)[-1]))
            if implied is not None:
                d.implied[implied[0]] = implied[1]
    if modifier != "missing":
        d.named.add(f"{base}.identifier" if (chain or modifier == "identifier") else base)


def _reverse_chain(d: _Draft, name: str, value: str, now: datetime) -> None:
    """`_has:<source>:<param>:<inner>=value`, for the references `params.REVERSE_CHAINS`
    names: the inner search is checked here, run by the access layer."""
    m = _HAS.fullmatch(name)
    if m is None:
        raise bad_request(f"Malformed reverse chain {name!r}: _has:Type:param:name", code="invalid")
    source, param, inner = m.groups()
    if (source, param, d.rtype) not in REVERSE_CHAINS:
        raise bad_request(f"{name} is not supported on {d.rtype}", name)
    filters = not inner.startswith("_") or inner.split(":")[0] in ("_id", "_lastUpdated")
    if not _NAME_RE.fullmatch(inner) or not filters:
        raise bad_request(f"Unsupported inner parameter {inner!r} in {name}", name)
    parse(source, [(inner, value)], now=now)  # refuses an inner search the source lacks
    d.reverse_chains.append(ReverseChain(source, param, ((inner, value),)))
    d.named.add("_has")


def _check_required(d: _Draft) -> None:
    missing = [
        label
        for names, label, waived_by in REQUIRED.get(d.rtype, ())
        if not (names & d.named) and not (waived_by & d.named)
    ]
    if missing:
        raise bad_request(
            f"A {d.rtype} search must name {' and '.join(missing)} (PDSm ITI-67)",
            code="required",
        )


def fingerprint(rtype: str, params: list[tuple[str, str]]) -> str:
    kept = sorted((k, v) for k, v in params if k not in _NOT_FILTERS)
    return hashlib.sha256(repr((rtype, kept)).encode()).hexdigest()[:16]


def parse(
    rtype: str,
    params: list[tuple[str, str]],
    *,
    default_count: int = 50,
    max_count: int = 1000,
    strict: bool = True,
    enforce_required: bool = False,
    now: datetime | None = None,
) -> SearchPlan:
    """A query as a plan. Defaults suit conditional create (unknown parameters refused);
    the search interaction passes the client's handling and enforces the PDSm required
    parameters."""
    now = now or datetime.now(UTC)
    check_size(params)
    d = _Draft(rtype, min(default_count, max_count))
    for name, value in params:
        if name.startswith("_has:"):
            _reverse_chain(d, name, value, now)
            continue
        if not _NAME_RE.fullmatch(name):
            # never "ignore" a malformed name: it is how injection attempts look
            raise bad_request(f"Malformed search parameter name {name!r}", code="invalid")
        if not _control(d, name, value, max_count=max_count, strict=strict):
            _filter(d, name, value, strict=strict, now=now)
    for name, value in d.implied.items():
        if name not in d.named:
            d.where.append(param_cond(params_of(rtype)[name], None, None, value, now))
    for raw, value, waived_by in DEFAULTS.get(rtype, ()):
        base, modifier, _ = _split_name(raw)
        if base not in d.named and not (waived_by & d.named):
            d.where.append(param_cond(params_of(rtype)[base], modifier, None, value, now))
    if enforce_required:
        _check_required(d)
    if d.summary == "count":
        d.count, d.total = 0, "accurate"
    elif d.total is None:
        # a page of no entries is asked for its total (FHIR: `_count=0` counts)
        d.total = "accurate" if d.count == 0 else "none"
    fp = fingerprint(rtype, params)
    cursor = decode_cursor(d.cursor_token, fp) if d.cursor_token is not None else None
    return SearchPlan(
        rtype=rtype,
        where=tuple(d.where),
        sort=d.sort,
        count=d.count,
        cursor=cursor,
        total=d.total,  # type: ignore[arg-type]
        summary=d.summary,
        elements=d.elements,
        includes=tuple(d.includes),
        ignored=tuple(d.ignored),
        reverse_chains=tuple(d.reverse_chains),
        fingerprint=fp,
    )


# the name the access layer and the interactions use
parse_query = parse
