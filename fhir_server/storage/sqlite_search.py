"""Compiles a search plan to SQL over the SQLite index tables and runs it."""

from __future__ import annotations

import sqlite3
from typing import Any

from fhir_server.fhir.numbers import whole_number
from fhir_server.search.plan import SearchPlan, SearchResult
from fhir_server.storage.port import Stored

_TABLE = {"token": "token", "ref": "ref"}


def cursor_value(cursor: str) -> int:
    """A paging cursor (a row number) from a client; ValueError if it is not one."""
    value = whole_number(cursor)
    if value is None:
        raise ValueError(f"invalid cursor {cursor!r}")
    return value


def compile_plan(plan: SearchPlan) -> tuple[str, list[Any]]:
    t = plan.rtype
    where = ["r.deleted = 0"]
    args: list[Any] = []
    for clause in plan.clauses:
        marks = ",".join("?" * len(clause.terms))
        if clause.kind == "id":
            where.append(f"r.id IN ({marks})")
        else:
            table = f'"{t}_{_TABLE[clause.kind]}"'
            where.append(f"r.rid IN (SELECT rid FROM {table} WHERE term IN ({marks}))")
        args.extend(clause.terms)
    if plan.cursor is not None:
        where.append("r.rid > ?")
        args.append(cursor_value(plan.cursor))
    sql = (
        f'SELECT r.rid, r.id, r.version, r.last_updated, r.content FROM "{t}" r '
        f"WHERE {' AND '.join(where)} ORDER BY r.rid LIMIT ?"
    )
    args.append(plan.count + 1)
    return sql, args


def execute(conn: sqlite3.Connection, plan: SearchPlan) -> SearchResult:
    sql, args = compile_plan(plan)
    rows = conn.execute(sql, args).fetchall()
    more = len(rows) > plan.count
    rows = rows[: plan.count]
    entries = [Stored(plan.rtype, r[1], r[2], r[3], False, r[4]) for r in rows]
    return SearchResult(entries, str(rows[-1][0]) if more and rows else None)
