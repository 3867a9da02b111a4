"""The one retry loop of a read-then-commit write: a concurrent writer changed the
resource between the read and the commit (VersionConflict), so read again and reapply;
with If-Match the client asked for that very version, so it is told (412) instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fhir_server import errors
from fhir_server.storage.port import VersionConflict

T = TypeVar("T")
ATTEMPTS = 5


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]], what: str, if_match: str | None = None
) -> T:
    for _ in range(ATTEMPTS):
        try:
            return await attempt()
        except VersionConflict:
            if if_match:
                raise errors.precondition_failed(f"{what} changed since {if_match}") from None
    raise errors.conflict(f"{what} is being changed concurrently; retry")
