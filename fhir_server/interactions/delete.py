"""delete: logical. The resource leaves reads and searches (410 Gone), stays in history."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.fhir.validation import check_id
from fhir_server.interactions import guard
from fhir_server.interactions.context import Context
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import VersionConflict, Write


async def prepare_delete(
    ctx: Context, rtype: str, id: str, transaction: str | None = None
) -> list[Write] | None:
    """The deletion Write and its audit, or None when already deleted (deleting twice is
    no error)."""
    check_id(id)
    current = await ctx.store.read(rtype, id)
    if current is None:
        raise errors.not_found(f"{rtype}/{id} is not known")
    if current.deleted:
        return None
    audit = await guard.authorize_write(
        ctx, "delete", rtype, current.resource, None, f"{rtype}/{id}", transaction
    )
    return [make_write("delete", rtype, id, None, current=current, now=ctx.now_iso()), *audit]


async def delete(ctx: Context, rtype: str, id: str) -> None:
    for _ in range(5):
        writes = await prepare_delete(ctx, rtype, id)
        if writes is None:
            return
        try:
            await ctx.store.commit(writes)
            return
        except VersionConflict:
            continue
    raise errors.conflict(f"{rtype}/{id} is being changed concurrently; retry")
