"""patch: JSON Patch on a DocumentReference's metadata, also conditional by identifier
(PDSm Flux 03). Each patch makes a new version."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fhir_server import errors
from fhir_server.fhir.jsonpatch import apply_patch
from fhir_server.fhir.metadata_rules import check_metadata_change
from fhir_server.fhir.validation import check_id, validate_resource
from fhir_server.interactions import guard, search
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.update import check_expected, parse_etag
from fhir_server.interactions.versioning import make_write
from fhir_server.search.plan import parse_query
from fhir_server.storage.port import Stored, VersionConflict


async def resolve_conditional(ctx: Context, rtype: str, query: str) -> str:
    """The id of the single resource matching a conditional PATCH query."""
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise errors.bad_request("A conditional patch needs search parameters")
    result = await search.run(ctx, parse_query(rtype, params, default_count=2, max_count=2))
    if not result.entries:
        raise errors.not_found(f"No {rtype} matches {query!r}")
    if len(result.entries) > 1:
        raise errors.precondition_failed(f"More than one {rtype} matches {query!r}")
    return result.entries[0].id


def patched(current: Stored, operations: Any) -> dict[str, Any]:
    before = current.resource or {}
    after = apply_patch(before, operations)
    check_metadata_change(current.rtype, before, after)
    return after


async def patch(
    ctx: Context, rtype: str, id: str, operations: Any, *, if_match: str | None = None
) -> WriteOutcome:
    check_id(id)
    expected = parse_etag(if_match) if if_match else None
    for _ in range(5):
        current = await ctx.store.read(rtype, id)
        if current is None or current.deleted:
            raise errors.not_found(f"{rtype}/{id} is not known")
        check_expected(rtype, id, expected, current)
        after = patched(current, operations)
        validate_resource(rtype, after, url_id=id)
        write = make_write("update", rtype, id, after, current=current, now=ctx.now_iso())
        audit = await guard.authorize_write(
            ctx, "patch", rtype, current.resource, write.resource, f"{rtype}/{id}"
        )
        try:
            stored, *_ = await ctx.store.commit([write, *audit])
        except VersionConflict:
            if expected is not None:
                raise errors.precondition_failed(f"{rtype}/{id} changed since {if_match}") from None
            continue
        return WriteOutcome(200, stored)
    raise errors.conflict(f"{rtype}/{id} is being changed concurrently; retry")
