"""Compiles a search plan (`search.plan`) to a MongoDB query; the same plans the SQLite
compiler runs, with the same answers.

Document layout per type collection (written by `MongoStore`):
`{_id: id, version, last_updated, deleted, patient, content: Binary(JSON),
  tok: ["param|value"], ref: ["param|Type/id"], str: [{p, v}], date: [{p, lo, hi}],
  sort: {param: lowest instant or ""}}` (`sort` = `IndexTerms.sort`: one value per
sortable date param, so a `_sort=-date` sorts on a plain field; Mongo cannot sort on
"the lo of the element whose p is date").

Indexes the plans rely on: `(patient, last_updated)` drives every patient-scoped query
(the compartment owner is also the shard key), `(patient, tok)` one record's search by
token (its matches alone, however large the record), multikey `tok` and `ref` drive token
and reference queries, `(date.p, date.lo)` date ranges, `_id` the id and the tie-breaker.

`compile_mongo` is pure. A chained `patient.identifier` needs the ids of the matching
Patients first: `chain_filters` lists the Patient queries to run, and their answers are
passed back to `compile_mongo` as `chains`. `search` runs the whole thing on any object
with PyMongo's async collection API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fhir_server.search import tokens
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

Filter = dict[str, Any]
SortSpec = list[tuple[str, int]]
Chains = Mapping[PatientChain, Sequence[str]]

ESTIMATE_CAP = 10_000
REVINCLUDE_CAP = 1_000
_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_STRING_HIGH = chr(0x10FFFF)
LIVE: Filter = {"deleted": {"$ne": True}}


def prefix_upper(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _filter_mongo(f: Any, rtype: str = "DocumentReference") -> Filter:
    if f.match_nothing:
        return {"_id": {"$in": []}}
    names = visibility_params(rtype)
    scope: list[Filter] = []
    if getattr(f, "patient", None):
        scope.append({"patient": f.patient})
    parts: list[Filter] = []
    if f.allowed_classes is not None:
        # a class code in any system
        classes = [
            _prefix("tok", tokens.code_prefix(names.class_code, c))
            for c in sorted(f.allowed_classes)
        ]
        parts.append({"$or": classes} if classes else {"_id": {"$in": []}})
    for rule in f.exclude:
        label, author, cutoff = visibility_terms(rule, rtype)
        hides: list[Filter] = [{"tok": label}]
        if author:
            hides.append({"tok": {"$ne": author}})
        if cutoff:
            filed = {"p": names.filed, "lo": {"$lte": cutoff}}
            hides.append({"date": {"$not": {"$elemMatch": filed}}})
        parts.append({"$nor": [{"$and": hides}]})
    if getattr(f, "invert", False):
        # nothing to turn round (every document admitted) selects nothing
        scope.append({"$nor": [{"$and": parts}]} if parts else {"_id": {"$in": []}})
        parts = []
    everything = scope + parts
    return {"$and": everything} if everything else {}


def visibility_mongo(visibility: Any, rtype: str = "DocumentReference") -> Filter | None:
    """The MongoDB twin of `sqlite_search.visibility_sql` (same contract, same answers):
    None = no restriction; the policy's VisibilityFilter is compiled from its documented
    fields; any other object must provide `mongo(rtype) -> filter`, else it is refused,
    never ignored."""
    if visibility is None:
        return None
    to_mongo = getattr(visibility, "mongo", None)
    if to_mongo is not None:
        return to_mongo(rtype)
    if all(hasattr(visibility, a) for a in ("match_nothing", "allowed_classes", "exclude")):
        return _filter_mongo(visibility, rtype)
    raise TypeError(f"visibility {type(visibility).__name__} cannot compile to MongoDB")


def _field(kind: str) -> str:
    return {"tok": "tok", "ref": "ref", "str": "str", "date": "date"}[kind]


def _prefix(kind: str, prefix: str) -> Filter:
    return {_field(kind): {"$elemMatch": {"$gte": prefix, "$lt": prefix_upper(prefix)}}}


def cond_filter(c: Cond, chains: Chains | None = None) -> Filter:
    if isinstance(c, TermIn):
        terms = list(c.terms)
        return {_field(c.kind): terms[0] if len(terms) == 1 else {"$in": terms}}
    if isinstance(c, TermPrefix):
        return _prefix(c.kind, c.prefix)
    if isinstance(c, TermSuffix):
        pattern = f"^{re.escape(c.prefix)}[\\s\\S]*{re.escape(c.suffix)}$"
        return {_field(c.kind): {"$regex": pattern}}
    if isinstance(c, StringMatch):
        return {"str": {"$elemMatch": {"p": c.param, "v": _string_value(c)}}}
    if isinstance(c, DateMatch):
        return _date_filter(c)
    if isinstance(c, Has):
        if c.kind in ("tok", "ref"):
            return _prefix(c.kind, f"{c.param}|")
        return {_field(c.kind): {"$elemMatch": {"p": c.param}}}
    if isinstance(c, IdIn):
        return {"_id": {"$in": list(c.ids)}}
    if isinstance(c, PatientIn):
        return {"patient": {"$in": list(c.ids)}}
    if isinstance(c, PatientChain):
        if chains is None or c not in chains:
            raise ValueError("patient chain not resolved: run chain_filters first")
        return {"patient": {"$in": list(chains[c])}}
    if isinstance(c, AnyOf):
        return {"$or": [cond_filter(p, chains) for p in c.parts]}
    if isinstance(c, Not):
        return {"$nor": [cond_filter(c.cond, chains)]}
    raise TypeError(f"unknown condition {c!r}")


def _string_value(c: StringMatch) -> Any:
    if c.mode == "exact":
        return c.value
    if c.mode == "contains":
        return {"$regex": re.escape(c.value)}
    return {"$gte": c.value, "$lt": c.value + _STRING_HIGH}


def _date_filter(c: DateMatch) -> Filter:
    if c.param == "_lastUpdated":
        return {"$and": [{"last_updated": {_OPS[op]: v}} for _, op, v in c.bounds]}
    match: Filter = {"p": c.param}
    for field, op, v in c.bounds:
        match.setdefault(field, {})[_OPS[op]] = v
    return {"date": {"$elemMatch": match}}


def _walk(conds: Sequence[Cond]) -> list[Cond]:
    out: list[Cond] = []
    for c in conds:
        out.append(c)
        if isinstance(c, AnyOf):
            out += _walk(c.parts)
        elif isinstance(c, Not):
            out += _walk([c.cond])
    return out


def chain_filters(plan: SearchPlan) -> list[tuple[PatientChain, Filter]]:
    """The Patient queries whose ids a chained search needs (project `_id` only)."""
    chains = [c for c in _walk(plan.where) if isinstance(c, PatientChain)]
    return [(c, {**LIVE, **cond_filter(c.cond)}) for c in dict.fromkeys(chains)]


def sort_field(plan: SearchPlan) -> str:
    key = plan.sort.key
    if key == "_id":
        return "_id"
    if key == "_lastUpdated":
        return "last_updated"
    return f"sort.{key}"


def sort_value(plan: SearchPlan, doc: Mapping[str, Any]) -> str:
    key = plan.sort.key
    if key == "_id":
        return str(doc["_id"])
    if key == "_lastUpdated":
        return doc["last_updated"]
    return (doc.get("sort") or {}).get(key, "")


def _cursor_filter(plan: SearchPlan) -> Filter | None:
    if plan.cursor is None:
        return None
    op = "$lt" if plan.sort.descending else "$gt"
    if plan.sort.key == "_id":
        return {"_id": {op: plan.cursor.id}}
    f = sort_field(plan)
    v = plan.cursor.value
    return {"$or": [{f: {op: v}}, {f: v, "_id": {op: plan.cursor.id}}]}


def where_filter(plan: SearchPlan, chains: Chains | None = None) -> Filter:
    check_resolved(plan)
    parts: list[Filter] = [LIVE, *(cond_filter(c, chains) for c in plan.where)]
    vis = visibility_mongo(plan.visibility, plan.rtype)
    if vis:
        parts.append(vis)
    return parts[0] if len(parts) == 1 else {"$and": parts}


def compile_mongo(plan: SearchPlan, chains: Chains | None = None) -> tuple[Filter, SortSpec, int]:
    """(filter, sort, limit) for `find`; limit is count + 1 to learn whether a next page
    exists. The id breaks ties in the direction of the sort."""
    filt = where_filter(plan, chains)
    cursor = _cursor_filter(plan)
    if cursor is not None:
        filt = {"$and": [*filt.get("$and", [filt]), cursor]}
    direction = -1 if plan.sort.descending else 1
    field = sort_field(plan)
    sort = [("_id", direction)] if field == "_id" else [(field, direction), ("_id", direction)]
    return filt, sort, plan.count + 1


def include_filter(inc: Include, page_docs: Sequence[Mapping[str, Any]]) -> Filter | None:
    """Filter on the target collection for an `_include` of the page's references."""
    prefix = f"{inc.param}|{inc.target}/"
    ids = {
        term[len(prefix) :]
        for d in page_docs
        for term in d.get("ref") or ()
        if term.startswith(prefix)
    }
    return {**LIVE, "_id": {"$in": sorted(ids)}} if ids else None


def revinclude_filter(plan: SearchPlan, inc: Include, page_ids: Sequence[str]) -> Filter | None:
    if not page_ids:
        return None
    parts = [LIVE, {"ref": {"$in": [f"{inc.param}|{plan.rtype}/{i}" for i in page_ids]}}]
    vis = visibility_mongo(plan.visibility, inc.source)
    if vis:
        parts.append(vis)
    return {"$and": parts}


# -- running it ------------------------------------------------------------------------------

READ_PROJECTION = {"str": 0, "date": 0}


def _stored(rtype: str, d: Mapping[str, Any]) -> Stored:
    return Stored(rtype, str(d["_id"]), d["version"], d["last_updated"], False, bytes(d["content"]))


async def search(collection: Callable[[str], Any], plan: SearchPlan) -> SearchResult:
    """Run a plan; `collection(rtype)` gives the current collection of a type."""
    chains = {}
    for chain, filt in chain_filters(plan):
        found = await collection("Patient").find(filt, {"_id": 1}).to_list()
        chains[chain] = [str(d["_id"]) for d in found]
    docs: list[Mapping[str, Any]] = []
    if plan.count > 0:
        filt, sort, limit = compile_mongo(plan, chains)
        docs = (
            await collection(plan.rtype)
            .find(filt, READ_PROJECTION)
            .sort(sort)
            .limit(limit)
            .to_list()
        )
    more = len(docs) > plan.count
    docs = docs[: plan.count]
    result = SearchResult(
        entries=[_stored(plan.rtype, d) for d in docs],
        next_cursor=encode_cursor(plan, sort_value(plan, docs[-1]), str(docs[-1]["_id"]))
        if more
        else None,
    )
    result.total = await _total(collection, plan, chains, len(docs), more)
    if plan.includes:
        result.included = await _included(collection, plan, docs)
    return result


async def _total(
    collection: Callable[[str], Any], plan: SearchPlan, chains: Chains, page: int, more: bool
) -> int | None:
    if plan.total == "none":
        return None
    if plan.cursor is None and not more and plan.count > 0:
        return page
    filt = where_filter(plan, chains)
    if plan.total == "estimate":
        n = await collection(plan.rtype).count_documents(filt, limit=ESTIMATE_CAP + 1)
        return None if n > ESTIMATE_CAP else n
    return await collection(plan.rtype).count_documents(filt)


async def _included(
    collection: Callable[[str], Any], plan: SearchPlan, docs: Sequence[Mapping[str, Any]]
) -> list[Stored]:
    out: dict[tuple[str, str], Stored] = {}
    for inc in plan.includes:
        if inc.reverse:
            filt = revinclude_filter(plan, inc, [str(d["_id"]) for d in docs])
            rtype, limit = inc.source, REVINCLUDE_CAP
        else:
            filt = include_filter(inc, docs)
            rtype, limit = inc.target, 0
        if filt is None:
            continue
        found = (
            await collection(rtype)
            .find(filt, READ_PROJECTION)
            .sort([("_id", 1)])
            .limit(limit)
            .to_list()
        )
        for d in found:
            out.setdefault((rtype, str(d["_id"])), _stored(rtype, d))
    return list(out.values())
