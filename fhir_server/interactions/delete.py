"""delete: logical. The resource leaves reads and searches (410 Gone), stays in history."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.fhir.validation import check_id
from fhir_server.interactions.context import Context
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import VersionConflict, Write


async def prepare_delete(ctx: Context, rtype: str, id: str) -> Write | None:
    """The deletion Write, or None when already deleted (deleting twice is no error)."""
    check_id(id)
    current = await ctx.store.read(rtype, id)
    if current is None:
        raise errors.not_found(f"{rtype}/{id} is not known")
    if current.deleted:
        return None
    return make_write("delete", rtype, id, None, current=current, now=ctx.now_iso())


async def delete(ctx: Context, rtype: str, id: str) -> None:
    for _ in range(5):
        write = await prepare_delete(ctx, rtype, id)
        if write is None:
            return
        try:
            await ctx.store.commit([write])
            return
        except VersionConflict:
            continue
    raise errors.conflict(f"{rtype}/{id} is being changed concurrently; retry")
