"""read and vread."""

from __future__ import annotations

from fhir_server import errors
from fhir_server.fhir.numbers import whole_number
from fhir_server.fhir.validation import check_id
from fhir_server.interactions.context import Context
from fhir_server.storage.port import Stored


async def read(ctx: Context, rtype: str, id: str) -> Stored:
    check_id(id)
    stored = await ctx.store.read(rtype, id)
    if stored is None:
        raise errors.not_found(f"{rtype}/{id} is not known")
    if stored.deleted:
        raise errors.gone(f"{rtype}/{id} was deleted (version {stored.version})")
    return stored


async def vread(ctx: Context, rtype: str, id: str, version: str) -> Stored:
    check_id(id)
    number = whole_number(version)
    if number is None:
        raise errors.not_found(f"{rtype}/{id} has no version {version!r}")
    stored = await ctx.store.vread(rtype, id, number)
    if stored is None:
        raise errors.not_found(f"{rtype}/{id} has no version {version}")
    if stored.deleted:
        raise errors.gone(f"{rtype}/{id} version {version} is a deletion")
    return stored
