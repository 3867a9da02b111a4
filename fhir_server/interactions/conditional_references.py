"""Conditional references in what a client writes (ITI-65, ITI-105, transaction Bundles,
create): each one must name exactly one resource the actor may see, found through the
Gate's conditional lookup (a match they may not see is no match, audited as a probe), so
a hidden Patient and an absent one get the same 422."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.access import lookups
from fhir_server.errors import FhirError
from fhir_server.fhir import conditional_references as refs
from fhir_server.interactions.context import Context


async def resolve_one(ctx: Context, reference: str) -> str:
    """`Type/id` of the one visible resource a conditional reference names, else 422."""
    parsed = refs.parse(reference)
    assert parsed is not None
    rtype, query = parsed
    try:
        found = await lookups.find(ctx.gate, rtype, query, purpose="Conditional reference")
    except FhirError as exc:
        if exc.status != 412:
            raise
        raise errors.unprocessable(
            f"The conditional reference {reference!r} matches several {rtype} resources: "
            "it must name exactly one",
            code="multiple-matches",
        ) from None
    if found is None:
        raise errors.unprocessable(
            f"The conditional reference {reference!r} matches no {rtype}: it must name exactly one",
            code="not-found",
        )
    return f"{found.rtype}/{found.id}"


async def resolve_all(ctx: Context, resources: list[Any]) -> dict[str, str]:
    """Conditional reference -> `Type/id`, for every one found in `resources`."""
    resolved: dict[str, str] = {}
    for resource in resources:
        for reference in refs.find(resource):
            if reference not in resolved:
                resolved[reference] = await resolve_one(ctx, reference)
    return resolved
