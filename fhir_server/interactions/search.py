"""search-type: parse the query into a plan (pure), run it in the store."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.interactions.context import Context
from fhir_server.search.plan import SearchPlan, SearchResult, parse_query


async def search(ctx: Context, rtype: str, params: list[tuple[str, str]]) -> SearchResult:
    plan = parse_query(
        rtype,
        params,
        default_count=ctx.settings.default_count,
        max_count=ctx.settings.max_count,
    )
    return await run(ctx, plan)


async def run(ctx: Context, plan: SearchPlan) -> SearchResult:
    """Run a plan; a cursor the store cannot read is the client's error (400)."""
    try:
        return await ctx.store.search(plan)
    except ValueError:
        raise errors.bad_request("Invalid paging cursor", "_cursor") from None
