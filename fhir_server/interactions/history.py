"""history of an instance or of a type, newest first, paged by an opaque cursor."""

from __future__ import annotations

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
    if id is None:
        return await ctx.gate.type_history(rtype, count=count, cursor=cursor, since=since)
    return await ctx.gate.history(rtype, id, count=count, cursor=cursor, since=since)
