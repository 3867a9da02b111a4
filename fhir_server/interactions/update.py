"""update (PUT), with If-Match optimistic locking. Under the DMP policy a client never
chooses a new resource's id: a PUT names a resource the actor may see, or gets the answer
an unknown id gets. Update-as-create remains for trusted use (auth=none)."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.fhir.numbers import whole_number
from fhir_server.fhir.server_fields import on_create
from fhir_server.fhir.validation import validate_resource
from fhir_server.interactions.context import Context
from fhir_server.interactions.create import duplicate_error
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import retry_on_conflict
from fhir_server.interactions.versioning import make_write
from fhir_server.policy.elements import carry_server_fields
from fhir_server.storage.port import Stored, UniqueViolation, Write


def parse_etag(value: str) -> int:
    if not isinstance(value, str):
        raise errors.bad_request(f'If-Match {value!r} is not a version ETag like W/"3"')
    tag = value.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    version = whole_number(tag)
    if version is None:
        raise errors.bad_request(f'If-Match {value!r} is not a version ETag like W/"3"')
    return version


def check_expected(rtype: str, id: str, expected: int | None, current: Stored | None) -> None:
    if expected is not None and (current is None or current.version != expected):
        found = "no version" if current is None else f"version {current.version}"
        raise errors.precondition_failed(
            f"If-Match expects version {expected} of {rtype}/{id}, the server has {found}"
        )


async def prepare_update(
    ctx: Context,
    rtype: str,
    id: str,
    resource: Any,
    *,
    if_match: str | None = None,
    transaction: str | None = None,
) -> tuple[list[Write], bool]:
    """The Writes for this update (the resource first, then its audit) and whether it
    creates the resource."""
    validate_resource(rtype, resource, url_id=id, require_id=True)
    current = await ctx.gate.stored_for_write(rtype, id, "update")
    check_expected(rtype, id, parse_etag(if_match) if if_match else None, current)
    if current is not None and current.deleted and not ctx.trusted:
        raise errors.gone(f"{rtype}/{id} was deleted (version {current.version})")
    creates = current is None or current.deleted
    before = None if creates or current is None else current.resource
    now = ctx.now_iso()
    after = (
        on_create(rtype, resource, now) if creates else carry_server_fields(rtype, before, resource)
    )
    after = _with_meta(after, before)
    write = make_write("update", rtype, id, after, current=current, now=now)
    interaction = "create" if creates else "update"
    audit = await ctx.gate.judge(
        interaction, rtype, before, write.resource, f"{rtype}/{id}", transaction=transaction
    )
    return [write, *audit], creates


def _with_meta(after: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """`after` with the server-kept meta of `before`, so only client changes compare."""
    if before is None:
        return after
    return {**after, "meta": before.get("meta", after.get("meta"))}


async def update(
    ctx: Context, rtype: str, id: str, resource: Any, *, if_match: str | None = None
) -> WriteOutcome:
    async def attempt() -> WriteOutcome:
        writes, creates = await prepare_update(ctx, rtype, id, resource, if_match=if_match)
        try:
            stored, *_ = await ctx.gate.commit(writes)
        except UniqueViolation as exc:
            raise duplicate_error(exc) from None
        return WriteOutcome(201 if creates else 200, stored)

    return await retry_on_conflict(attempt, f"{rtype}/{id}", if_match)
