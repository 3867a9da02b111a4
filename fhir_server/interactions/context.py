"""What every interaction receives: the store, the settings, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_server.config import Settings
from fhir_server.storage.port import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    store: Store
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    # filled by the access-control layer: who asks and how (None = trusted local call)
    actor: Any = None
    access: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def now_iso(self) -> str:
        return self.clock().isoformat(timespec="microseconds")
