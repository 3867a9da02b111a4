"""Compiles a search plan to a MongoDB query over the current collection (pure: no I/O).

Fields searched are the index terms `MongoStore` writes beside each resource: `tok` and `ref`
arrays of "param|value" strings (multikey indexes), `_id` for `_id`. Pages are ordered by
`_id` and the cursor is the last id served (keyset paging: no skip, stable under inserts).
"""

from __future__ import annotations

import re
from typing import Any

from fhir_server.search.plan import Clause, SearchPlan, SearchResult
from fhir_server.storage.port import Stored

Filter = dict[str, Any]
Sort = list[tuple[str, int]]

# clause kind -> field of the current document holding its terms
FIELDS = {"id": "_id", "token": "tok", "ref": "ref"}
_CURSOR = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def clause_filter(clause: Clause) -> Filter:
    field = FIELDS[clause.kind]
    terms = list(clause.terms)
    return {field: terms[0]} if len(terms) == 1 else {field: {"$in": terms}}


def cursor_filter(cursor: str) -> Filter:
    # the cursor is the last id of the previous page: anything else is a bad request
    if not _CURSOR.fullmatch(cursor):
        raise ValueError(f"invalid cursor {cursor!r}")
    return {"_id": {"$gt": cursor}}


def compile_mongo(plan: SearchPlan) -> tuple[Filter, Sort, int]:
    """(filter, sort, limit) for `find`; limit is count + 1 to learn whether a next page exists."""
    parts: list[Filter] = [{"deleted": False}]
    parts.extend(clause_filter(c) for c in plan.clauses)
    if plan.cursor is not None:
        parts.append(cursor_filter(plan.cursor))
    filt = parts[0] if len(parts) == 1 else {"$and": parts}
    return filt, [("_id", 1)], plan.count + 1


def to_result(plan: SearchPlan, docs: list[dict[str, Any]]) -> SearchResult:
    more = len(docs) > plan.count
    docs = docs[: plan.count]
    entries = [
        Stored(plan.rtype, d["_id"], d["version"], d["last_updated"], False, bytes(d["content"]))
        for d in docs
    ]
    return SearchResult(entries, docs[-1]["_id"] if more and docs else None)
