"""search-type: the guard scopes it to one record and gives the visibility filter; the
plan (pure) carries the filter into the store query; results are checked once more."""

from __future__ import annotations

import dataclasses

from fhir_server import errors
from fhir_server.interactions import guard
from fhir_server.interactions.context import Context
from fhir_server.search.plan import SearchPlan, SearchResult, parse_query


async def search(ctx: Context, rtype: str, params: list[tuple[str, str]]) -> SearchResult:
    plan = parse_query(
        rtype,
        params,
        default_count=ctx.settings.default_count,
        max_count=ctx.settings.max_count,
    )
    scope = await guard.authorize_search(ctx, rtype, params)
    if scope.visibility is not None and hasattr(plan, "visibility"):
        plan = dataclasses.replace(plan, visibility=scope.visibility)
    result = await run(ctx, plan)
    result.entries = await guard.visible_results(ctx, rtype, scope, result.entries)
    if getattr(result, "included", None):
        result.included = await guard.visible_results(ctx, rtype, scope, result.included)
    await guard.commit_search(ctx, scope, rtype, params)
    return result


async def run(ctx: Context, plan: SearchPlan) -> SearchResult:
    """Run a plan; a cursor the store cannot read is the client's error (400)."""
    try:
        return await ctx.store.search(plan)
    except ValueError:
        raise errors.bad_request("Invalid paging cursor", "_cursor") from None
