"""read and vread: the current resource or one version, once the policy permits (the
Gate decides on the last live version: every version follows the resource's labels now)."""

from __future__ import annotations

from fhir_server.interactions.context import Context
from fhir_server.storage.port import Stored


async def read(ctx: Context, rtype: str, id: str) -> Stored:
    return await ctx.gate.read(rtype, id)


async def vread(ctx: Context, rtype: str, id: str, version: str) -> Stored:
    return await ctx.gate.vread(rtype, id, version)
