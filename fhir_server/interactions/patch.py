"""patch: JSON Patch on a DocumentReference's metadata, also conditional by search (PDSm
Flux 03). The Gate finds the target among what the actor may see, and decides whether
they may see it before the patch is even applied; the result is judged on both states.
Each patch makes a new version."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.access import answers, searches
from fhir_server.fhir.jsonpatch import apply_patch
from fhir_server.fhir.validation import validate_resource
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.update import check_expected, parse_etag
from fhir_server.interactions.versioning import make_write
from fhir_server.policy.elements import carry_server_fields


async def resolve_conditional(ctx: Context, rtype: str, query: str) -> str:
    """The id of the single resource the actor may see that a conditional PATCH names."""
    if not query:
        raise errors.bad_request("A conditional patch needs search parameters")
    found = await searches.find(ctx.gate, rtype, query, purpose="Conditional patch")
    if found is None:
        raise errors.not_found(f"No {rtype} matches {query!r}")
    return found.id


async def patch(
    ctx: Context, rtype: str, id: str, operations: Any, *, if_match: str | None = None
) -> WriteOutcome:
    expected = parse_etag(if_match) if if_match else None

    async def attempt() -> WriteOutcome:
        current = await ctx.gate.stored_for_write(rtype, id, "patch")
        if current is None or current.deleted:
            raise answers.unknown(f"{rtype}/{id}")
        check_expected(rtype, id, expected, current)
        before = current.resource or {}
        after = carry_server_fields(rtype, before, apply_patch(before, operations))
        validate_resource(rtype, after, url_id=id)
        write = make_write("update", rtype, id, after, current=current, now=ctx.now_iso())
        audit = await ctx.gate.judge("patch", rtype, before, write.resource, f"{rtype}/{id}")
        stored, *_ = await ctx.gate.commit([write, *audit])
        return WriteOutcome(200, stored)

    return await retry_on_conflict(attempt, f"{rtype}/{id}", if_match)
