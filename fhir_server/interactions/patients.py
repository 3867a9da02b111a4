"""Finding the one Patient that holds an INS."""

from __future__ import annotations

import asyncio

from fhir_server import errors
from fhir_server.fhir.uniqueness import ins_key
from fhir_server.interactions.context import Context

WAIT_STEPS = 50
WAIT_SECONDS = 0.01


async def patient_holding(ctx: Context, system: str, value: str) -> str | None:
    """The id of the Patient holding this INS, or None. A key can be reserved by a filing
    still writing its Patient (stores without transactions reserve keys first): wait for
    the Patient to appear rather than point a document at a Patient not yet written."""
    key = ins_key(system, value)
    for _ in range(WAIT_STEPS):
        holder = await ctx.store.holder_of(key)
        if holder is None:
            return None
        stored = await ctx.store.read(*holder)
        if stored is not None and not stored.deleted:
            # the record's policy reads this Patient next (`guard.load_record`)
            ctx.extras.setdefault("patients", {})[holder[1]] = stored
            return holder[1]
        await asyncio.sleep(WAIT_SECONDS)
    raise errors.conflict(f"The Patient holding INS {value} is being created concurrently; retry")
