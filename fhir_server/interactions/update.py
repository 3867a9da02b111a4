"""update (PUT), with If-Match optimistic locking; update-as-create for a new id."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.fhir.metadata_rules import check_metadata_change
from fhir_server.fhir.numbers import whole_number
from fhir_server.fhir.server_fields import on_create, on_update
from fhir_server.fhir.validation import check_id, validate_resource
from fhir_server.interactions import guard
from fhir_server.interactions.context import Context
from fhir_server.interactions.create import duplicate_error
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.versioning import make_write
from fhir_server.storage.port import Stored, UniqueViolation, VersionConflict, Write

RETRIES = 5


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
    check_id(id)
    validate_resource(rtype, resource, url_id=id, require_id=True)
    current = await ctx.store.read(rtype, id)
    check_expected(rtype, id, parse_etag(if_match) if if_match else None, current)
    creates = current is None or current.deleted
    before = None if creates or current is None else current.resource
    now = ctx.now_iso()
    after = on_create(rtype, resource, now) if creates else on_update(rtype, before, resource)
    if before is not None:
        # after filing only metadata may change (PDSm Flux 03), by PUT as by PATCH
        check_metadata_change(rtype, before, _comparable(after, before))
    write = make_write("update", rtype, id, after, current=current, now=now)
    interaction = "create" if creates else "update"
    audit = await guard.authorize_write(
        ctx, interaction, rtype, before, write.resource, f"{rtype}/{id}", transaction
    )
    return [write, *audit], creates


def _comparable(after: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """`after` with the server-kept meta of `before`, so only client changes compare."""
    return {**after, "meta": (before or {}).get("meta", after.get("meta"))}


async def update(
    ctx: Context, rtype: str, id: str, resource: Any, *, if_match: str | None = None
) -> WriteOutcome:
    for _ in range(RETRIES):
        writes, creates = await prepare_update(ctx, rtype, id, resource, if_match=if_match)
        try:
            stored, *_ = await ctx.store.commit(writes)
        except VersionConflict:
            if if_match:
                raise errors.precondition_failed(f"{rtype}/{id} changed since {if_match}") from None
            continue  # a concurrent writer won: read again and reapply
        except UniqueViolation as exc:
            raise duplicate_error(exc) from None
        return WriteOutcome(201 if creates else 200, stored)
    raise errors.conflict(f"{rtype}/{id} is being changed concurrently; retry")
