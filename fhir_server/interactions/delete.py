"""delete: logical. The resource leaves reads and searches (410 Gone), stays in history."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.fhir.validation import check_id
from fhir_server.interactions.context import Context
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import VersionConflict


async def delete(ctx: Context, rtype: str, id: str) -> None:
    check_id(id)
    for _ in range(5):
        current = await ctx.store.read(rtype, id)
        if current is None:
            raise errors.not_found(f"{rtype}/{id} is not known")
        if current.deleted:
            return  # deleting twice is not an error (FHIR: idempotent)
        write = make_write("delete", rtype, id, None, current=current, now=ctx.now_iso())
        try:
            await ctx.store.commit([write])
            return
        except VersionConflict:
            continue
    raise errors.conflict(f"{rtype}/{id} is being changed concurrently; retry")
