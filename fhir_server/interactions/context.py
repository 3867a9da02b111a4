"""What every interaction receives: the store, the settings, the clock, and who asks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_server.audit.events import ServerIdentity
from fhir_server.auth.actor import AccessContext, Actor
from fhir_server.config import Settings
from fhir_server.storage.port import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    store: Store
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    # the verified caller; None only when authentication is off (auth=none: trusted use)
    actor: Actor | None = None
    access: AccessContext = field(default_factory=AccessContext)
    client: str | None = None
    server: ServerIdentity = field(default_factory=ServerIdentity)
    extras: dict[str, Any] = field(default_factory=dict)

    def now_iso(self) -> str:
        return self.clock().isoformat(timespec="microseconds")

    @property
    def trusted(self) -> bool:
        """No actor: the DMP policy is not applied (auth=none); audit still records."""
        return self.actor is None
