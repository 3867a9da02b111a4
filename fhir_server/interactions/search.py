"""search-type: parse the query into a plan (pure); the Gate scopes it to one record,
filters it in the store query and audits it; results are shaped (`_summary`,
`_elements`), and ignored parameters reported."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.access import searches
from fhir_server.errors import Issue, operation_outcome
from fhir_server.interactions.context import Context
from fhir_server.search.parse import parse_query
from fhir_server.search.plan import SearchPlan, SearchResult
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
            f"{', '.join(plan.ignored)} (Prefer: handling=lenient; without it they are refused)",
            severity="warning",
        )
    ]


async def search(
    ctx: Context, rtype: str, params: list[tuple[str, str]], *, strict: bool = True
) -> SearchOutcome:
    plan = parse_query(
        rtype,
        params,
        default_count=ctx.settings.default_count,
        max_count=ctx.settings.max_count,
        strict=strict,
        enforce_required=True,
    )
    result = await searches.search(ctx.gate, plan, params)
    result.entries = _shaped(plan, result.entries)
    return SearchOutcome(plan, result, _warnings(rtype, plan))
