"""`_has` (reverse chaining) resolved under the reader's rules, before the store runs the
search: `Observation?_has:DiagnosticReport:result:_id=R` is the Observations that the
DiagnosticReports matching `_id=R` *and visible to this reader in this record* name in
`result`.

The inner search is parsed by the one planner and scoped exactly as a search of its own
type would be (`searches.scoped_plan`: the record, the policy's visibility filter), and
every report it finds is checked once more (`searches.visible`). So a `_has` naming a
hidden report finds what one naming an unknown report finds: nothing. The references
followed are those `search.params.REVERSE_CHAINS` names.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fhir_server import errors
from fhir_server.access.records import Record
from fhir_server.search.index import reference_key, values_at
from fhir_server.search.params import params_of
from fhir_server.search.parse import parse_query
from fhir_server.search.plan import IdIn, ReverseChain, SearchPlan

if TYPE_CHECKING:
    from fhir_server.access.gate import Gate

# the reports one `_has` may go through: a patient's reports by any inner criterion
HAS_MAX = 1000


async def _named_ids(
    gate: Gate, chain: ReverseChain, target: str, record: Record | None
) -> list[str]:
    from fhir_server.access.searches import scoped_plan, visible

    inner = parse_query(chain.source, list(chain.params), default_count=HAS_MAX, max_count=HAS_MAX)
    if record is not None:  # None: a trusted caller, scoped by nothing
        inner = await scoped_plan(gate, inner, record)
    result = await gate._store.search(inner)
    if result.next_cursor is not None:
        raise errors.bad_request(
            f"_has:{chain.source} matches more than {HAS_MAX} resources: narrow it",
            code="too-costly",
        )
    param = params_of(chain.source)[chain.param]
    ids: list[str] = []
    for source in await visible(gate, result.entries):
        for ref in values_at(source.resource or {}, param):
            key = reference_key(str(ref.get("reference") or "")) if isinstance(ref, dict) else None
            if key is not None and key.startswith(f"{target}/"):
                ids.append(key.split("/", 1)[1])
    return ids


async def resolved(gate: Gate, plan: SearchPlan, record: Record | None) -> SearchPlan:
    """The plan with each `_has` turned into the ids it names (AND of them all)."""
    if not plan.reverse_chains:
        return plan
    where = list(plan.where)
    for chain in plan.reverse_chains:
        ids = await _named_ids(gate, chain, plan.rtype, record)
        where.append(IdIn(tuple(dict.fromkeys(ids))))
    return replace(plan, where=tuple(where), reverse_chains=())
