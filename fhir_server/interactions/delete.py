"""delete: logical. The resource leaves reads and searches (410 Gone), stays in history."""

from __future__ import annotations

from fhir_server.interactions.context import Context
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import Write


async def prepare_delete(
    ctx: Context, rtype: str, id: str, transaction: str | None = None
) -> list[Write] | None:
    """The deletion Write and its audit, or None when already deleted (deleting twice is
    no error, for an actor who may see the resource)."""
    current = await ctx.gate.stored_for_write(rtype, id, "delete")
    if current is None:
        from fhir_server.access import answers

        raise answers.unknown(f"{rtype}/{id}")
    if current.deleted:
        return None
    audit = await ctx.gate.judge(
        "delete", rtype, current.resource, None, f"{rtype}/{id}", transaction=transaction
    )
    return [make_write("delete", rtype, id, None, current=current, now=ctx.now_iso()), *audit]


async def delete(ctx: Context, rtype: str, id: str) -> None:
    async def attempt() -> None:
        writes = await prepare_delete(ctx, rtype, id)
        if writes is not None:
            await ctx.gate.commit(writes)

    await retry_on_conflict(attempt, f"{rtype}/{id}")
