"""Compiles a search plan (`search.plan`) to SQL over the SQLite index tables and runs it.

Tables (see `sqlite.table_ddl`): the current table `T(rid, id, version, last_updated,
deleted, patient, content)`, `T_token(term, patient, rid)` (keyed in that order) and
`T_ref(term, rid)` with term "param|value", `T_string(param, value, rid)`,
`T_date(param, low, high, rid)`.

How a query is driven, so that it never scans a table as data grows:
- patient-scoped (a `patient`/`subject` value or `patient.identifier`) with a token
  condition (`code`, `category`, `status`...): the token key (term, patient) yields that
  record's matches alone, however large the record; without one, the `patient` column
  index yields the record's rows. Every other condition is a correlated EXISTS probe on
  an index keyed by rid; the ORDER BY sorts those rows.
- the page is chosen on keys (rid, id, sort key) in a subquery, then its rows are read.
- otherwise the first indexable condition is an `rid IN (SELECT rid ...)` that drives
  from its term/param index, and the others are EXISTS probes.
Every value is a bound parameter; table names come from the resource type table and
param names from `search.params`, never from the request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from fhir_server.search import tokens
from fhir_server.search.plan import (
    AnyOf,
    Cond,
    DateMatch,
    Has,
    IdIn,
    Not,
    PatientChain,
    PatientIn,
    SearchPlan,
    SearchResult,
    StringMatch,
    TermIn,
    TermPrefix,
    TermSuffix,
    check_resolved,
    encode_cursor,
)
from fhir_server.search.visibility import visibility_params, visibility_terms
from fhir_server.storage.port import Stored

# _total=estimate counts up to this many matches, then gives up (no total)
ESTIMATE_CAP = 10_000
# at most this many resources are added by one _revinclude
REVINCLUDE_CAP = 1_000
_STRING_HIGH = chr(0x10FFFF)  # sorts after any UTF-8 text: prefix upper bound


def prefix_upper(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _filter_sql(f: Any, rtype: str, keyed: bool) -> tuple[str, list[Any]]:
    if f.match_nothing:
        return "0", []
    tok, dat = f'"{rtype}_token"', f'"{rtype}_date"'
    names = visibility_params(rtype)
    scope: list[str] = []
    args: list[Any] = []
    if getattr(f, "patient", None):
        # a test of the row when the search reads the record's matches by token key
        scope.append("+r.patient = ?" if keyed else "r.patient = ?")
        args.append(f.patient)
    parts: list[str] = []
    if f.allowed_classes is not None:
        classes = sorted(f.allowed_classes)
        if not classes:
            parts.append("0")
        else:
            # a class code in any system; the range around them all lets the probe seek
            # to the row's class terms rather than test every term of the row
            prefixes = [tokens.code_prefix(names.class_code, c) for c in classes]
            ranges = " OR ".join(["term >= ? AND term < ?"] * len(classes))
            parts.append(
                f"EXISTS (SELECT 1 FROM {tok} WHERE rid = r.rid AND term >= ? AND term < ? "
                f"AND ({ranges}))"
            )
            args += [min(prefixes), max(prefix_upper(prefix) for prefix in prefixes)]
            for prefix in prefixes:
                args += [prefix, prefix_upper(prefix)]
    for rule in f.exclude:
        label, author, cutoff = visibility_terms(rule, rtype)
        hides = [f"EXISTS (SELECT 1 FROM {tok} WHERE rid = r.rid AND term = ?)"]
        args.append(label)
        if author:
            hides.append(f"NOT EXISTS (SELECT 1 FROM {tok} WHERE rid = r.rid AND term = ?)")
            args.append(author)
        if cutoff:
            hides.append(
                f"NOT EXISTS (SELECT 1 FROM {dat} WHERE rid = r.rid AND param = ? AND +low <= ?)"
            )
            args += [names.filed, cutoff]
        parts.append(f"NOT ({' AND '.join(hides)})")
    admitted = " AND ".join(parts) or "1"
    if getattr(f, "invert", False):
        admitted = f"NOT ({admitted})"
    return " AND ".join([*scope, admitted]), args


def visibility_sql(
    visibility: Any, rtype: str = "DocumentReference", *, keyed: bool = False
) -> tuple[str, list[Any]]:
    """SQL (over alias `r` of the current table of rtype) restricting a search to what the
    actor may see, and its bound arguments; ("", []) when there is no restriction. `keyed`:
    the search is driven by the token key of its record (`where_sql`).

    `SearchPlan.visibility` comes from the access-control layer: either its
    VisibilityFilter (compiled above from its documented fields) or any object with
    `sql(rtype) -> (sql, args)` built only from bound parameters. Anything else is
    refused rather than ignored, so a restriction can never be silently dropped.
    """
    if visibility is None:
        return "", []
    to_sql = getattr(visibility, "sql", None)
    if to_sql is not None:
        sql, args = to_sql(rtype)
        return sql, list(args)
    if all(hasattr(visibility, a) for a in ("match_nothing", "allowed_classes", "exclude")):
        return _filter_sql(visibility, rtype, keyed)
    raise TypeError(f"visibility {type(visibility).__name__} cannot compile to SQL")


class _Compiler:
    """Builds a WHERE clause for one resource type and table alias."""

    def __init__(self, rtype: str, alias: str = "r") -> None:
        self.t = rtype
        self.a = alias
        self.args: list[Any] = []

    def _bind(self, *values: Any) -> None:
        self.args.extend(values)

    def _marks(self, values: Sequence[Any]) -> str:
        self._bind(*values)
        return ",".join("?" * len(values))

    def _index(self, table: str, where: str, drive: bool) -> str:
        tbl = f'"{self.t}_{table}"'
        if drive:
            return f"{self.a}.rid IN (SELECT rid FROM {tbl} WHERE {where})"
        return f"EXISTS (SELECT 1 FROM {tbl} WHERE rid = {self.a}.rid AND {where})"

    def cond(self, c: Cond, drive: bool = False) -> str:
        method = getattr(self, f"_{type(c).__name__}")
        return method(c, drive)

    def _TermIn(self, c: TermIn, drive: bool) -> str:
        table = "token" if c.kind == "tok" else "ref"
        return self._index(table, f"term IN ({self._marks(c.terms)})", drive)

    def _TermPrefix(self, c: TermPrefix, drive: bool) -> str:
        table = "token" if c.kind == "tok" else "ref"
        self._bind(c.prefix, prefix_upper(c.prefix))
        return self._index(table, "term >= ? AND term < ?", drive)

    def _TermSuffix(self, c: TermSuffix, drive: bool) -> str:
        table = "token" if c.kind == "tok" else "ref"
        self._bind(c.prefix, prefix_upper(c.prefix), len(c.suffix), c.suffix)
        return self._index(table, "term >= ? AND term < ? AND substr(term, -?) = ?", drive)

    @staticmethod
    def _probe(column: str, drive: bool) -> str:
        # A probe (EXISTS per candidate row) must look up by rid; SQLite without
        # statistics would rather range-scan a (param, value) index for every candidate.
        # The unary + keeps the value column out of index selection.
        return column if drive else f"+{column}"

    def _StringMatch(self, c: StringMatch, drive: bool) -> str:
        v = self._probe("value", drive)
        if c.mode == "exact":
            self._bind(c.param, c.value)
            return self._index("string", f"param = ? AND {v} = ?", drive)
        if c.mode == "contains":
            self._bind(c.param, c.value)
            return self._index("string", "param = ? AND instr(value, ?) > 0", drive)
        self._bind(c.param, c.value, c.value + _STRING_HIGH)
        return self._index("string", f"param = ? AND {v} >= ? AND {v} < ?", drive)

    def _DateMatch(self, c: DateMatch, drive: bool) -> str:
        if c.param == "_lastUpdated":
            self._bind(*(v for _, _, v in c.bounds))
            return " AND ".join(f"{self.a}.last_updated {op} ?" for _, op, _ in c.bounds)
        cols = {"lo": self._probe("low", drive), "hi": self._probe("high", drive)}
        self._bind(c.param, *(v for _, _, v in c.bounds))
        where = " AND ".join(["param = ?", *(f"{cols[f]} {op} ?" for f, op, _ in c.bounds)])
        return self._index("date", where, drive)

    def _Has(self, c: Has, drive: bool) -> str:
        if c.kind in ("tok", "ref"):
            return self._TermPrefix(TermPrefix(c.kind, f"{c.param}|"), drive)
        self._bind(c.param)
        return self._index("string" if c.kind == "str" else "date", "param = ?", drive)

    def _IdIn(self, c: IdIn, drive: bool) -> str:
        return f"{self.a}.id IN ({self._marks(c.ids)})"

    def _PatientIn(self, c: PatientIn, drive: bool) -> str:
        return self.record(c, f"{self.a}.patient" if drive else f"+{self.a}.patient")

    def _PatientChain(self, c: PatientChain, drive: bool) -> str:
        return self.record(c, f"{self.a}.patient" if drive else f"+{self.a}.patient")

    def record(self, c: PatientIn | PatientChain, column: str) -> str:
        """`column` names one of the records the condition designates."""
        if isinstance(c, PatientIn):
            return f"{column} IN ({self._marks(c.ids)})"
        inner = _Compiler("Patient", "p")
        where = inner.cond(c.cond, drive=True)
        self._bind(*inner.args)
        return f'{column} IN (SELECT p.id FROM "Patient" p WHERE p.deleted = 0 AND {where})'

    def keyed(self, c: Cond, scope: PatientIn | PatientChain) -> str:
        """A token condition read by the key (term, patient): the record's matches only."""
        tbl = f'"{self.t}_token"'
        if isinstance(c, AnyOf):
            return "(" + " OR ".join(self.keyed(p, scope) for p in c.parts) + ")"
        if isinstance(c, TermIn):
            terms = self._marks(c.terms)
            return (
                f"{self.a}.rid IN (SELECT rid FROM {tbl} WHERE term IN ({terms}) "
                f"AND {self.record(scope, 'patient')})"
            )
        assert isinstance(c, TermPrefix)
        # a code in any system: the few distinct terms of the prefix first, each found by
        # one seek past the previous one, then the record's rows of each
        upper = prefix_upper(c.prefix)
        self._bind(c.prefix, upper, upper)
        return (
            f"{self.a}.rid IN (WITH RECURSIVE k(term) AS ("
            f"SELECT (SELECT term FROM {tbl} WHERE term >= ? AND term < ? ORDER BY term LIMIT 1) "
            f"UNION ALL SELECT (SELECT term FROM {tbl} WHERE term > k.term AND term < ? "
            "ORDER BY term LIMIT 1) FROM k WHERE k.term IS NOT NULL) "
            f"SELECT rid FROM {tbl} WHERE term IN (SELECT term FROM k) "
            f"AND {self.record(scope, 'patient')})"
        )

    def _AnyOf(self, c: AnyOf, drive: bool) -> str:
        return "(" + " OR ".join(self.cond(p, drive) for p in c.parts) + ")"

    def _Not(self, c: Not, drive: bool) -> str:
        return f"NOT ({self.cond(c.cond, False)})"


_SCOPING = (PatientIn, PatientChain, IdIn)
_BY_PATIENT = (PatientIn, PatientChain)
_DRIVERS = (TermIn, TermPrefix, TermSuffix, StringMatch, DateMatch)


def _keyable(c: Cond) -> bool:
    """Whether a token condition can be read by the token key: exact terms, a code in any
    system (a prefix of few distinct terms; not `system|`, nor `:missing`, whose prefixes
    span every code of the parameter), or a choice of those."""
    if isinstance(c, AnyOf):
        return all(_keyable(p) for p in c.parts)
    if isinstance(c, TermPrefix):
        return c.kind == "tok" and c.prefix.endswith(tokens.SEP)
    return isinstance(c, TermIn) and c.kind == "tok"


def _keyed(where: Sequence[Cond]) -> Cond | None:
    """The token condition of a record's search to read by the token key: exact terms
    first (one seek each)."""
    exact = [c for c in where if isinstance(c, TermIn) and _keyable(c)]
    return next(iter(exact + [c for c in where if _keyable(c)]), None)


def _drives(c: Cond) -> bool:
    if isinstance(c, DateMatch):
        return c.param != "_lastUpdated"
    if isinstance(c, AnyOf):
        return all(_drives(p) for p in c.parts)
    return isinstance(c, _DRIVERS)


def is_bounded(plan: SearchPlan) -> bool:
    """True when the plan is scoped by the patient or by ids, so it touches few rows
    whatever the size of the database (an accurate total too: it counts those rows)."""
    return any(isinstance(c, _SCOPING) for c in plan.where)


def where_sql(plan: SearchPlan) -> tuple[str, list[Any], bool]:
    """WHERE clause of the plan (without paging), its arguments, and whether it is
    scoped by an indexed column (patient or id)."""
    check_resolved(plan)
    comp = _Compiler(plan.rtype)
    scoped = any(isinstance(c, _SCOPING) for c in plan.where)
    driver = None if scoped else next((c for c in plan.where if _drives(c)), None)
    # A deleted row keeps no patient (`sqlite.SqliteStore._apply`): a search by patient
    # needs no `deleted` test, which would read each of the record's rows from the table
    # where the patient index alone serves the other conditions.
    record = next((c for c in plan.where if isinstance(c, _BY_PATIENT)), None)
    by_ids = any(isinstance(c, IdIn) for c in plan.where)
    keyed = _keyed(plan.where) if record is not None and not by_ids else None
    parts = [] if record is not None else ["r.deleted = 0"]
    for c in plan.where:
        if c is keyed and record is not None:
            parts.append(comp.keyed(c, record))
        else:
            # the record's condition drives, unless its matches are read by token key
            parts.append(comp.cond(c, drive=c is driver or (c is record and keyed is None)))
    vis, vis_args = visibility_sql(plan.visibility, plan.rtype, keyed=keyed is not None)
    if vis:
        parts.append(f"({vis})")
    return " AND ".join(parts) or "1", comp.args + vis_args, scoped


def sort_sql(plan: SearchPlan) -> tuple[str, list[Any]]:
    key = plan.sort.key
    if key == "_id":
        return "r.id", []
    if key == "_lastUpdated":
        return "r.last_updated", []
    return (
        f'COALESCE((SELECT MIN(low) FROM "{plan.rtype}_date" '
        "WHERE rid = r.rid AND param = ?), '')",
        [key],
    )


def compile_plan(plan: SearchPlan) -> tuple[str, list[Any]]:
    """The page query: matches after the cursor, in sort order, count + 1 rows (the extra
    row tells whether a next page exists)."""
    where, args, scoped = where_sql(plan)
    sk, sk_args = sort_sql(plan)
    direction = "DESC" if plan.sort.descending else "ASC"
    cmp = "<" if plan.sort.descending else ">"
    if plan.cursor is not None:
        if plan.sort.key == "_id":
            where += f" AND r.id {cmp} ?"
            args += [plan.cursor.id]
        else:
            where += f" AND ({sk} {cmp} ? OR ({sk} = ? AND r.id {cmp} ?))"
            args += [*sk_args, plan.cursor.value, *sk_args, plan.cursor.value, plan.cursor.id]
    # a patient's rows are few: sort them rather than walk a global order index
    order_id = "+r.id" if scoped else "r.id"
    order = (
        f"{order_id} {direction}" if plan.sort.key == "_id" else f"sk {direction}, r.id {direction}"
    )
    page = "p.id" if plan.sort.key == "_id" else f"p.sk {direction}, p.id"
    # The page is chosen on keys alone, then its rows are read: sorting the matches with
    # their content copied every match's JSON into the sorter (a record's hundreds of
    # results for one code, for a page of 50).
    sql = (
        "SELECT r.rid, r.id, r.version, r.last_updated, r.content, p.sk FROM "
        f'(SELECT r.rid AS rid, r.id AS id, {sk} AS sk FROM "{plan.rtype}" r '
        f"WHERE {where} ORDER BY {order} LIMIT ?) p "
        f'JOIN "{plan.rtype}" r ON r.rid = p.rid ORDER BY {page} {direction}'
    )
    return sql, [*sk_args, *args, plan.count + 1]


def count_sql(plan: SearchPlan, cap: int | None) -> tuple[str, list[Any]]:
    where, args, _ = where_sql(plan)
    inner = f'SELECT 1 FROM "{plan.rtype}" r WHERE {where}'
    if cap is not None:
        inner += " LIMIT ?"
        args = [*args, cap + 1]
    return f"SELECT COUNT(*) FROM ({inner})", args


def _stored(rtype: str, row: Sequence[Any]) -> Stored:
    return Stored(rtype, row[1], row[2], row[3], False, row[4])


def _total(conn: sqlite3.Connection, plan: SearchPlan, page: int, more: bool) -> int | None:
    if plan.total == "none":
        return None
    if plan.cursor is None and not more and plan.count > 0:
        return page  # the first page holds everything: the count is free
    cap = ESTIMATE_CAP if plan.total == "estimate" else None
    sql, args = count_sql(plan, cap)
    n = conn.execute(sql, args).fetchone()[0]
    return None if cap is not None and n > cap else n


def _included(conn: sqlite3.Connection, plan: SearchPlan, rows: list[Any]) -> list[Stored]:
    out: list[Stored] = []
    seen: set[tuple[str, str]] = set()
    rids = [r[0] for r in rows]
    for inc in plan.includes:
        found = _revinclude(conn, plan, inc, rows) if inc.reverse else _include(conn, inc, rids)
        for s in found:
            if (s.rtype, s.id) not in seen:
                seen.add((s.rtype, s.id))
                out.append(s)
    return out


def _include(conn: sqlite3.Connection, inc: Any, rids: list[int]) -> list[Stored]:
    if not rids:
        return []
    prefix = f"{inc.param}|{inc.target}/"
    terms = conn.execute(
        f'SELECT DISTINCT term FROM "{inc.source}_ref" '
        f"WHERE rid IN ({','.join('?' * len(rids))}) AND term >= ? AND term < ?",
        [*rids, prefix, prefix_upper(prefix)],
    ).fetchall()
    ids = [t[0][len(prefix) :] for t in terms]
    if not ids:
        return []
    rows = conn.execute(
        f'SELECT rid, id, version, last_updated, content FROM "{inc.target}" '
        f"WHERE deleted = 0 AND id IN ({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    return [_stored(inc.target, r) for r in rows]


def _revinclude(
    conn: sqlite3.Connection, plan: SearchPlan, inc: Any, rows: list[Any]
) -> list[Stored]:
    if not rows:
        return []
    terms = [f"{inc.param}|{plan.rtype}/{r[1]}" for r in rows]
    vis, vis_args = visibility_sql(plan.visibility, inc.source)
    sql = (
        f'SELECT r.rid, r.id, r.version, r.last_updated, r.content FROM "{inc.source}" r '
        f'WHERE r.deleted = 0 AND r.rid IN (SELECT rid FROM "{inc.source}_ref" '
        f"WHERE term IN ({','.join('?' * len(terms))}))"
        + (f" AND ({vis})" if vis else "")
        + " ORDER BY r.id LIMIT ?"
    )
    found = conn.execute(sql, [*terms, *vis_args, REVINCLUDE_CAP]).fetchall()
    return [_stored(inc.source, r) for r in found]


def execute(conn: sqlite3.Connection, plan: SearchPlan) -> SearchResult:
    rows: list[Any] = []
    more = False
    if plan.count > 0:
        sql, args = compile_plan(plan)
        rows = conn.execute(sql, args).fetchall()
        more = len(rows) > plan.count
        rows = rows[: plan.count]
    next_cursor = encode_cursor(plan, rows[-1][5], rows[-1][1]) if more else None
    return SearchResult(
        entries=[_stored(plan.rtype, r) for r in rows],
        next_cursor=next_cursor,
        total=_total(conn, plan, len(rows), more),
        included=_included(conn, plan, rows) if plan.includes else [],
    )
