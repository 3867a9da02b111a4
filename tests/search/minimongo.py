"""A tiny evaluator of the MongoDB query operators `mongo_search` emits, so the compiled
filters can be checked for the same answers as SQLite without a server. Follows MongoDB
semantics for arrays: a condition on an array field matches if any element matches."""

from __future__ import annotations

import re
from typing import Any

_CMP = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _scalar_ok(value: Any, cond: Any) -> bool:
    if not isinstance(cond, dict) or not any(k.startswith("$") for k in cond):
        return value == cond
    for op, arg in cond.items():
        if op == "$in":
            ok = value in arg
        elif op == "$ne":
            ok = value != arg
        elif op == "$regex":
            ok = isinstance(value, str) and re.search(arg, value) is not None
        elif op in _CMP:
            ok = value is not None and type(value) is type(arg) and _CMP[op](value, arg)
        else:
            raise NotImplementedError(op)
        if not ok:
            return False
    return True


def _field_ok(value: Any, cond: Any) -> bool:
    if isinstance(cond, dict) and "$not" in cond:
        return not _field_ok(value, cond["$not"])
    if isinstance(cond, dict) and "$elemMatch" in cond:
        em = cond["$elemMatch"]
        items = value if isinstance(value, list) else []
        if any(k.startswith("$") for k in em):
            return any(_scalar_ok(i, em) for i in items)
        return any(isinstance(i, dict) and matches(i, em) for i in items)
    if isinstance(cond, dict) and "$ne" in cond and len(cond) == 1:
        if isinstance(value, list):
            return cond["$ne"] not in value
        return value != cond["$ne"]
    if isinstance(value, list):
        return any(_scalar_ok(v, cond) for v in value)
    return _scalar_ok(value, cond)


def matches(doc: dict[str, Any], filt: dict[str, Any]) -> bool:
    for key, cond in filt.items():
        if key == "$and":
            ok = all(matches(doc, f) for f in cond)
        elif key == "$or":
            ok = any(matches(doc, f) for f in cond)
        elif key == "$nor":
            ok = not any(matches(doc, f) for f in cond)
        else:
            ok = _field_ok(_get(doc, key), cond)
        if not ok:
            return False
    return True


def find(docs: list[dict], filt: dict, sort: list[tuple[str, int]], limit: int) -> list[dict]:
    out = [d for d in docs if matches(d, filt)]
    for field, direction in reversed(sort):
        out.sort(key=lambda d, f=field: _get(d, f), reverse=direction < 0)
    return out[:limit] if limit else out
