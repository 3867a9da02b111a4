"""history of an instance or of a type, newest first, paged by an opaque cursor."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.auth.actor import Role
from fhir_server.fhir.validation import check_id
from fhir_server.interactions import guard
from fhir_server.interactions.context import Context
from fhir_server.policy import Decision
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
        latest = await ctx.store.read(rtype, id)
        if latest is None:
            raise errors.not_found(f"{rtype}/{id} is not known")
        if latest.deleted:
            last_live = await ctx.store.vread(rtype, id, latest.version - 1)
            governing = last_live.resource if last_live else None
        else:
            governing = latest.resource
        await guard.authorize_read(
            ctx, rtype, id, governing, "history-instance", f"{rtype}/{id}/_history"
        )
    else:
        await _type_history_allowed(ctx, rtype)
    try:
        return await ctx.store.history(rtype, id, count=count, cursor=cursor, since=since)
    except ValueError:
        raise errors.bad_request("Invalid paging cursor", "_cursor") from None


async def _type_history_allowed(ctx: Context, rtype: str) -> None:
    """A type's history crosses every record: for the auditor only (**decision**)."""
    audit = {"interaction": "history-type", "resource": f"{rtype}/_history"}
    if ctx.trusted or (ctx.actor is not None and ctx.actor.role == Role.AUDITOR):
        await guard.commit_read(
            ctx,
            guard.TRUSTED if ctx.trusted else Decision.allow("auditor", "type history"),
            None,
            **audit,
        )
        return
    refusal = Decision.deny("type-history", "the history of a whole type is for the auditor only")
    raise await guard.refuse(ctx, refusal, patient_id=None, **audit)
