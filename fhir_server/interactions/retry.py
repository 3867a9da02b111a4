"""The one retry loop of the request path. A write is prepared from what the store holds,
then committed; a concurrent writer may win in between (a version conflict, a unique key
taken by a racing filing). The attempt says `Again` and is prepared anew from the new
state, up to a few times; with If-Match the client asked for that very version, so it is
told (412) instead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fhir_server import errors
from fhir_server.errors import FhirError
from fhir_server.storage.port import VersionConflict

T = TypeVar("T")
ATTEMPTS = 5


class Again(Exception):
    """Raised by an attempt that lost a race and should be prepared again."""


async def retry(
    attempt: Callable[[bool], Awaitable[T]],
    exhausted: Callable[[], FhirError],
    *,
    attempts: int = ATTEMPTS,
    pause_s: float = 0.0,
) -> T:
    """Run `attempt(last)` until it returns; `last` tells the final attempt, which should
    answer rather than raise `Again`. `pause_s` grows with each attempt (writes of a racing
    filing that are not all visible yet)."""
    for n in range(attempts):
        try:
            return await attempt(n == attempts - 1)
        except Again:
            if pause_s:
                await asyncio.sleep(pause_s * (n + 1))
    raise exhausted()


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]], what: str, if_match: str | None = None
) -> T:
    async def once(last: bool) -> T:
        try:
            return await attempt()
        except VersionConflict:
            if if_match:
                raise errors.precondition_failed(f"{what} changed since {if_match}") from None
            raise Again() from None

    return await retry(
        once, lambda: errors.conflict(f"{what} is being changed concurrently; retry")
    )
