"""history of an instance or of a type, newest first, paged by an opaque cursor."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.fhir.validation import check_id
from fhir_server.interactions.context import Context
from fhir_server.storage.port import HistoryPage


async def history(
    ctx: Context,
    rtype: str,
    id: str | None,
    *,
    count: int,
    cursor: str | None,
    since: str | None,
) -> HistoryPage:
    if id is not None:
        check_id(id)
        if await ctx.store.read(rtype, id) is None:
            raise errors.not_found(f"{rtype}/{id} is not known")
    try:
        return await ctx.store.history(rtype, id, count=count, cursor=cursor, since=since)
    except ValueError:
        raise errors.bad_request("Invalid paging cursor", "_cursor") from None
