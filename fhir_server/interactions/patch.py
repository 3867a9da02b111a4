"""patch: JSON Patch or FHIRPath Patch on a DocumentReference's metadata, also conditional
by search (PDSm Flux 03), standalone or as a PATCH entry of a Bundle. The Gate finds the
target among what the actor may see, and decides whether they may see it before the patch
is even applied; the result is judged on both states. Each patch makes a new version; a
patch to `entered-in-error` is the author's logical deletion (TD3.3c)."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.access import answers, lookups
from fhir_server.fhir.patches import deletion_requested, patched
from fhir_server.fhir.validation import validate_resource
from fhir_server.interactions import delete
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.update import check_expected, parse_etag
from fhir_server.interactions.versioning import make_write
from fhir_server.policy.elements import carry_server_fields
from fhir_server.storage.port import Write


async def resolve_conditional(ctx: Context, rtype: str, query: str) -> str:
    """The id of the single resource the actor may see that a conditional PATCH or DELETE
    names (none: 404, the answer of an unknown id; several: 412)."""
    if not query:
        raise errors.bad_request("A conditional patch needs search parameters")
    # the write then judges the actor on the document: a filer finds its own (TD3.3)
    found = await lookups.find(ctx.gate, rtype, query, purpose="Conditional patch", known=True)
    if found is None:
        raise errors.not_found(f"No {rtype} matches {query!r}")
    return found.id


async def prepare_patch(
    ctx: Context,
    rtype: str,
    id: str,
    body: Any,
    *,
    if_match: str | None = None,
    transaction: str | None = None,
) -> list[Write]:
    """The new version (or the deletion) with its audit, judged on both states."""
    expected = parse_etag(if_match) if if_match else None
    current = await ctx.gate.stored_for_write(rtype, id, "patch")
    if current is None or current.deleted:
        raise answers.unknown(f"{rtype}/{id}")
    check_expected(rtype, id, expected, current)
    before = current.resource or {}
    # evaluated only now: the actor may see the target
    after = carry_server_fields(rtype, before, patched(rtype, before, body))
    if deletion_requested(rtype, before, after):
        deletion = await delete.prepare_delete(ctx, rtype, id, transaction)
        assert deletion is not None  # `current` is live
        return deletion
    validate_resource(rtype, after, url_id=id)
    write = make_write("update", rtype, id, after, current=current, now=ctx.now_iso())
    audit = await ctx.gate.judge(
        "patch", rtype, before, write.resource, f"{rtype}/{id}", transaction=transaction
    )
    return [write, *audit]


async def patch(
    ctx: Context, rtype: str, id: str, body: Any, *, if_match: str | None = None
) -> WriteOutcome:
    async def attempt() -> WriteOutcome:
        writes = await prepare_patch(ctx, rtype, id, body, if_match=if_match)
        stored, *_ = await ctx.gate.commit(writes)
        message = "Deleted (status entered-in-error)" if stored.deleted else "Updated"
        return WriteOutcome(200, stored, message)

    return await retry_on_conflict(attempt, f"{rtype}/{id}", if_match)
