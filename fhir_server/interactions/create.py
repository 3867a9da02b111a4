"""create, and conditional create (If-None-Exist) made race-free by a unique key the
database holds for the condition."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.fhir.uniqueness import condition_key
from fhir_server.fhir.validation import validate_resource
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.search.plan import parse_query
from fhir_server.storage.port import Stored, UniqueViolation

# a second filing of the same document answers with the first one (DMP: stored once)
IDEMPOTENT_KEYS = ("DocumentReference.uniqueId|",)


async def _existing(ctx: Context, holder: tuple[str, str]) -> Stored:
    stored = await ctx.store.read(*holder)
    if stored is None or stored.deleted:  # released between the two calls: rare, retryable
        raise errors.conflict("A concurrent change touched the same resource; retry")
    return stored


async def _match_condition(ctx: Context, rtype: str, query: str) -> Stored | None:
    from urllib.parse import parse_qsl

    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise errors.bad_request("If-None-Exist must carry a search query", "If-None-Exist")
    plan = parse_query(rtype, params, default_count=2, max_count=2)
    result = await ctx.store.search(plan)
    if len(result.entries) > 1:
        raise errors.precondition_failed(f"If-None-Exist {query!r} matches more than one {rtype}")
    return result.entries[0] if result.entries else None


async def create(
    ctx: Context, rtype: str, resource: Any, *, if_none_exist: str | None = None
) -> WriteOutcome:
    validate_resource(rtype, resource)
    extra: tuple[str, ...] = ()
    if if_none_exist:
        found = await _match_condition(ctx, rtype, if_none_exist)
        if found is not None:
            return WriteOutcome(200, found, "An existing resource matches If-None-Exist")
        extra = (condition_key(rtype, if_none_exist),)
    write = make_write(
        "create", rtype, new_id(), resource, current=None, now=ctx.now_iso(), extra_keys=extra
    )
    try:
        [stored] = await ctx.store.commit([write])
    except UniqueViolation as exc:
        if exc.key in extra or exc.key.startswith(IDEMPOTENT_KEYS):
            return WriteOutcome(200, await _existing(ctx, (exc.rtype, exc.id)), "Already exists")
        raise errors.conflict(
            f"{exc.rtype}/{exc.id} already holds {exc.key.split('|', 1)[0]} "
            f"{exc.key.split('|', 1)[1]!r}; it must be unique",
            code="duplicate",
        ) from None
    return WriteOutcome(201, stored)
