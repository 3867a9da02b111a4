"""Start-up repairs run once per store: a marker in the store's meta says it was done."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fhir_server.storage.port import Store, StoreUnavailable

log = logging.getLogger("fhir_server.repairs")

# a repair: how many resources it rewrote, and whether it saw every one through (a
# resource written meanwhile is looked at again at the next start)
Repair = Callable[[Store], Awaitable[tuple[int, bool]]]


async def run_once(store: Store, key: str, repair: Repair, what: str) -> int | None:
    """The repair, unless this store had it already (None); `what` names its work in
    the log."""
    try:
        if await store.meta(key):
            return None
        count, complete = await repair(store)
        if complete:
            await store.set_meta(key, "1")
    except StoreUnavailable:
        log.warning("store unavailable: %s not checked at start-up", what)
        return None
    if count:
        log.info("%s: %d resources rewritten", what, count)
    return count
