"""create, and conditional create (If-None-Exist) made race-free by a unique key the
database holds for the condition."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fhir_server import errors
from fhir_server.fhir.server_fields import on_create
from fhir_server.fhir.uniqueness import condition_key
from fhir_server.fhir.validation import validate_resource
from fhir_server.interactions import guard, search
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.search.plan import parse_query
from fhir_server.storage.port import Stored, UniqueViolation, Write

# a second filing of the same document answers with the first one (DMP: stored once)
IDEMPOTENT_KEYS = ("DocumentReference.uniqueId|",)


async def existing(ctx: Context, rtype: str, id: str) -> Stored:
    stored = await ctx.store.read(rtype, id)
    if stored is None or stored.deleted:  # released between the two calls: rare, retryable
        raise errors.conflict("A concurrent change touched the same resource; retry")
    return stored


async def match_condition(ctx: Context, rtype: str, query: str) -> Stored | None:
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise errors.bad_request("If-None-Exist must carry a search query", "If-None-Exist")
    plan = parse_query(rtype, params, default_count=2, max_count=2)
    result = await search.run(ctx, plan)
    if len(result.entries) > 1:
        raise errors.precondition_failed(f"If-None-Exist {query!r} matches more than one {rtype}")
    return result.entries[0] if result.entries else None


async def existing_for(ctx: Context, stored: Stored) -> Stored:
    """Answering with an existing resource discloses it: the actor must be able to read it."""
    await guard.authorize_read(
        ctx, stored.rtype, stored.id, stored.resource, "read", f"{stored.rtype}/{stored.id}"
    )
    return stored


def attachment_hash(document: Any) -> str | None:
    """The SHA-1 (base64) of a DocumentReference's first attachment."""
    content = document.get("content") if isinstance(document, dict) else None
    first = content[0] if isinstance(content, list) and content else None
    attachment = first.get("attachment") if isinstance(first, dict) else None
    value = attachment.get("hash") if isinstance(attachment, dict) else None
    return value if isinstance(value, str) else None


def refiled_by_filer(ctx: Context, stored: Stored, sent: Any) -> bool:
    """A filer sends the very bytes of a filed document (same SHA-1): it holds the document
    already, so getting the filed DocumentReference back discloses nothing new, and the
    retry of a filing whose answer was lost must succeed (a laboratory system reads no
    record)."""
    digest = attachment_hash(sent)
    actor = ctx.actor
    return (
        actor is not None
        and actor.role in guard.FILING_ROLES
        and digest is not None
        and digest == attachment_hash(stored.resource)
    )


async def already_filed(ctx: Context, stored: Stored, sent: Any) -> Stored:
    """The answer to a document filed again (same uniqueId): the filed one, to the filer
    of the same bytes (audited as a refiling) or to whoever may read it."""
    if refiled_by_filer(ctx, stored, sent):
        await guard.audit_refiling(ctx, stored)
        return stored
    return await existing_for(ctx, stored)


async def read_refiled(ctx: Context, rtype: str, id: str) -> Stored:
    """What a refiling bundle gets back for its document and content entries."""
    stored = await existing(ctx, rtype, id)
    if rtype == "DocumentReference":
        await guard.audit_refiling(ctx, stored)
    return stored


async def prepare_create(
    ctx: Context,
    rtype: str,
    resource: Any,
    *,
    if_none_exist: str | None = None,
    id: str | None = None,
    transaction: str | None = None,
) -> list[Write] | Stored:
    """The Writes that create the resource (first) with its audit and notifications, or
    the existing match of If-None-Exist."""
    validate_resource(rtype, resource)
    extra: tuple[str, ...] = ()
    if if_none_exist:
        found = await match_condition(ctx, rtype, if_none_exist)
        if found is not None:
            return await existing_for(ctx, found)
        extra = (condition_key(rtype, if_none_exist),)
    now = ctx.now_iso()
    write = make_write(
        "create",
        rtype,
        id or new_id(),
        on_create(rtype, resource, now),
        current=None,
        now=now,
        extra_keys=extra,
    )
    audit = await guard.authorize_write(
        ctx, "create", rtype, None, write.resource, f"{rtype}/{write.id}", transaction
    )
    return [write, *audit]


def is_idempotent(exc: UniqueViolation, write: Write) -> bool:
    """A key clash that means "already there" (same document, same condition), not an error."""
    return exc.key.startswith(IDEMPOTENT_KEYS) or (
        exc.key in write.unique_keys and ".condition|" in exc.key
    )


def duplicate_error(exc: UniqueViolation) -> errors.FhirError:
    name, _, value = exc.key.partition("|")
    return errors.conflict(
        f"{exc.rtype}/{exc.id} already holds {name} {value!r}; it must be unique", code="duplicate"
    )


async def create(
    ctx: Context, rtype: str, resource: Any, *, if_none_exist: str | None = None
) -> WriteOutcome:
    prepared = await prepare_create(ctx, rtype, resource, if_none_exist=if_none_exist)
    if isinstance(prepared, Stored):
        return WriteOutcome(200, prepared, "An existing resource matches If-None-Exist")
    try:
        stored = await ctx.store.commit(prepared)
    except UniqueViolation as exc:
        if is_idempotent(exc, prepared[0]):
            found = await existing(ctx, exc.rtype, exc.id)
            return WriteOutcome(200, await already_filed(ctx, found, resource), "Already exists")
        raise duplicate_error(exc) from None
    return WriteOutcome(201, stored[0])
