"""search-type: parse the query into a plan (pure); the guard scopes it to one record and
gives the visibility filter, which the plan carries into the store query; results are
checked once more, shaped (`_summary`, `_elements`), and ignored parameters reported."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fhir_server import errors
from fhir_server.errors import Issue, operation_outcome
from fhir_server.interactions import guard
from fhir_server.interactions.context import Context
from fhir_server.search.plan import SearchPlan, SearchResult, parse_query
from fhir_server.search.shape import needs_shaping, shape
from fhir_server.storage.port import Stored


@dataclass
class SearchOutcome:
    plan: SearchPlan
    result: SearchResult
    warnings: list[Issue] = field(default_factory=list)

    def outcome(self) -> dict | None:
        return operation_outcome(self.warnings) if self.warnings else None


def _shaped(plan: SearchPlan, entries: list[Stored]) -> list[Stored]:
    if not needs_shaping(plan.summary, plan.elements):
        return entries
    out = []
    for s in entries:
        res = shape(s.rtype, s.resource or {}, plan.summary, plan.elements)
        out.append(Stored(s.rtype, s.id, s.version, s.last_updated, False, None, _resource=res))
    return out


def _warnings(rtype: str, plan: SearchPlan) -> list[Issue]:
    if not plan.ignored:
        return []
    return [
        Issue(
            "not-supported",
            f"Ignored search parameters unknown to this server for {rtype}: "
            f"{', '.join(plan.ignored)} (send Prefer: handling=strict to have them refused)",
            severity="warning",
        )
    ]


async def search(
    ctx: Context, rtype: str, params: list[tuple[str, str]], *, strict: bool = False
) -> SearchOutcome:
    plan = parse_query(
        rtype,
        params,
        default_count=ctx.settings.default_count,
        max_count=ctx.settings.max_count,
        strict=strict,
        enforce_required=True,
    )
    scope = await guard.authorize_search(ctx, rtype, params)
    if scope.visibility is not None:
        plan = replace(plan, visibility=scope.visibility)
    result = await ctx.store.search(plan)
    result.entries = await guard.visible_results(ctx, rtype, scope, result.entries)
    if result.included:
        result.included = await guard.visible_results(ctx, rtype, scope, result.included)
    await guard.commit_search(ctx, scope, rtype, params)
    result.entries = _shaped(plan, result.entries)
    return SearchOutcome(plan, result, _warnings(rtype, plan))


async def run(ctx: Context, plan: SearchPlan) -> SearchResult:
    """Run a plan outside a client search (conditions of create and PATCH); a cursor the
    store cannot read is the client's error (400)."""
    try:
        return await ctx.store.search(plan)
    except ValueError:
        raise errors.bad_request("Invalid paging cursor", "_cursor") from None
