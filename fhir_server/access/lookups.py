"""The lookups of conditional operations (If-None-Exist, conditional PATCH and DELETE,
conditional references): they see only what the actor may see, and each match hidden
from the actor is audited as a probe in its record."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fhir_server import errors
from fhir_server.access.audit import TRUSTED, audit_write
from fhir_server.access.searches import identity_lookup, sees_stored
from fhir_server.auth.actor import Role
from fhir_server.fhir.compartment import patient_of
from fhir_server.policy import Decision
from fhir_server.records import Stored
from fhir_server.search.parse import parse_query

if TYPE_CHECKING:
    from fhir_server.access.gate import Gate

# a conditional operation looks at this many candidates at most (pages of the raw search)
MATCH_PAGE, MATCH_PAGES = 50, 20


async def find(
    gate: Gate, rtype: str, query: str, *, purpose: str, known: bool = False
) -> Stored | None:
    """The one resource a conditional operation (If-None-Exist, conditional PATCH or
    DELETE, a conditional reference) names, among those the actor may see (`known`: may
    know exists, see `sees_stored`): a match they may not see is no match (audited in its
    record as a probe, in the same commit as the lookup's own audit)."""
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise errors.bad_request(f"{purpose} must carry a search query")
    actor = gate.ctx.actor
    auditor = actor is not None and actor.role == Role.AUDITOR
    if rtype == "Patient" and not identity_lookup(rtype, params) and not auditor:
        raise errors.bad_request(f"{purpose}: a Patient is found by its INS (identifier)")
    plan = parse_query(rtype, params, default_count=MATCH_PAGE, max_count=MATCH_PAGE)
    seen: list[Stored] = []
    probes: list[Stored] = []
    for _ in range(MATCH_PAGES):
        try:
            result = await gate._store.search(plan)
        except ValueError:
            raise errors.bad_request("Invalid paging cursor", "_cursor") from None
        for stored in result.entries:
            (seen if await sees_stored(gate, stored, known=known) else probes).append(stored)
        if len(seen) > 1 or result.next_cursor is None:
            break
        plan = parse_query(
            rtype, [*params, ("_cursor", result.next_cursor)], default_count=MATCH_PAGE
        )
    await _audit_lookup(gate, rtype, query, seen, probes)
    if len(seen) > 1:
        raise errors.precondition_failed(f"{purpose} {query!r} matches more than one {rtype}")
    return seen[0] if seen else None


async def _audit_lookup(
    gate: Gate, rtype: str, query: str, seen: list[Stored], probes: list[Stored]
) -> None:
    pid = patient_of(rtype, seen[0].resource) if len(seen) == 1 else None
    decision = TRUSTED if gate.trusted else Decision.allow("conditional", "conditional lookup")
    writes = [
        audit_write(
            gate.ctx, decision, interaction="search-type", status=200, patient_id=pid, query=query
        )
    ]
    hidden = Decision.hide("conditional-match-hidden", "a match the actor may not see")
    for stored in probes:
        writes.append(
            audit_write(
                gate.ctx,
                hidden,
                interaction="search-type",
                status=404,
                patient_id=patient_of(stored.rtype, stored.resource),
                resource=f"{stored.rtype}/{stored.id}",
                query=query,
            )
        )
    await gate.commit(writes)
