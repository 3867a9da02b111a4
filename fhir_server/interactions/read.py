"""read and vread: the current resource or one version, after the policy says so."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.fhir.numbers import whole_number
from fhir_server.fhir.validation import check_id
from fhir_server.interactions import guard
from fhir_server.interactions.context import Context
from fhir_server.storage.port import Stored


async def current(ctx: Context, rtype: str, id: str) -> Stored:
    """The live resource, without any policy check (callers check)."""
    check_id(id)
    stored = await ctx.store.read(rtype, id)
    if stored is None:
        raise errors.not_found(f"{rtype}/{id} is not known")
    if stored.deleted:
        raise errors.gone(f"{rtype}/{id} was deleted (version {stored.version})")
    return stored


async def read(ctx: Context, rtype: str, id: str) -> Stored:
    stored = await current(ctx, rtype, id)
    await guard.authorize_read(ctx, rtype, id, stored.resource, "read", f"{rtype}/{id}")
    return stored


async def vread(ctx: Context, rtype: str, id: str, version: str) -> Stored:
    check_id(id)
    number = whole_number(version)
    if number is None:
        raise errors.not_found(f"{rtype}/{id} has no version {version!r}")
    stored = await ctx.store.vread(rtype, id, number)
    if stored is None:
        raise errors.not_found(f"{rtype}/{id} has no version {version}")
    # the labels in force now govern every version (an old unmasked version of a masked
    # document stays hidden)
    latest = await ctx.store.read(rtype, id)
    governing = latest.resource if latest is not None and not latest.deleted else stored.resource
    ref = f"{rtype}/{id}/_history/{version}"
    await guard.authorize_read(ctx, rtype, id, governing, "vread", ref)
    if stored.deleted:
        raise errors.gone(f"{rtype}/{id} version {version} is a deletion")
    return stored
