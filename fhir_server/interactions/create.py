"""create, and conditional create (If-None-Exist) made race-free by a unique key the
database holds for the condition."""

from __future__ import annotations

from typing import Any

from fhir_server import errors
from fhir_server.access import filing, lookups
from fhir_server.fhir.server_fields import on_create
from fhir_server.fhir.uniqueness import DOCUMENT_KEY, condition_key, unique_key_kind
from fhir_server.fhir.validation import validate_resource
from fhir_server.interactions import conditional_references
from fhir_server.interactions.context import Context
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.storage.port import Stored, UniqueViolation, Write


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
    the existing match of If-None-Exist (a match the actor may not see is no match)."""
    validate_resource(rtype, resource)
    extra: tuple[str, ...] = ()
    if if_none_exist:
        found = await lookups.find(ctx.gate, rtype, if_none_exist, purpose="If-None-Exist")
        if found is not None:
            # answering with it discloses it: the actor must be able to read it
            return await ctx.gate.read(found.rtype, found.id)
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
    audit = await ctx.gate.judge(
        "create", rtype, None, write.resource, f"{rtype}/{write.id}", transaction=transaction
    )
    return [write, *audit]


def is_condition_clash(exc: UniqueViolation, write: Write) -> bool:
    """A concurrent create with the same If-None-Exist condition got there first."""
    return exc.key in write.unique_keys and ".condition|" in exc.key


def duplicate_error(exc: UniqueViolation) -> errors.FhirError:
    """A unique key held by another resource: named by what the client sent, never by the
    holder (which the client may not see)."""
    return errors.conflict(
        f"{unique_key_kind(exc.key)} is already held by another resource; it must be unique",
        code="duplicate",
    )


async def create(
    ctx: Context, rtype: str, resource: Any, *, if_none_exist: str | None = None
) -> WriteOutcome:
    if isinstance(resource, dict) and conditional_references.refs.find(resource):
        resolved = await conditional_references.resolve_all(ctx, [resource])
        resource = conditional_references.refs.rewrite(resource, resolved)
    prepared = await prepare_create(ctx, rtype, resource, if_none_exist=if_none_exist)
    if isinstance(prepared, Stored):
        return WriteOutcome(200, prepared, "An existing resource matches If-None-Exist")
    try:
        stored = await ctx.gate.commit(prepared)
    except UniqueViolation as exc:
        if exc.key.startswith(DOCUMENT_KEY):
            # the same uniqueId again: a DocumentReference alone proves no bytes
            found = await filing.filed(ctx.gate, resource.get("masterIdentifier") or {})
            if found is None:
                raise errors.conflict(
                    "A concurrent change touched the same resource; retry"
                ) from None
            return WriteOutcome(200, await filing.refiled(ctx.gate, found, None), "Already exists")
        if is_condition_clash(exc, prepared[0]) and if_none_exist:
            # a concurrent create with the same condition won: answer with its resource
            found = await lookups.find(ctx.gate, rtype, if_none_exist, purpose="If-None-Exist")
            if found is not None:
                existing = await ctx.gate.read(found.rtype, found.id)
                return WriteOutcome(200, existing, "Already exists")
        raise duplicate_error(exc) from None
    return WriteOutcome(201, stored[0])
