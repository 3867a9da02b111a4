"""What every interaction receives: the settings, the clock, who asks, and the Gate, the
one way to stored data (`fhir_server.access`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from fhir_server.access.records import RequestCache
from fhir_server.audit.events import ServerIdentity
from fhir_server.auth.actor import AccessContext, Actor
from fhir_server.config import Settings
from fhir_server.storage.port import Store

if TYPE_CHECKING:
    from fhir_server.access.gate import Gate


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    # the raw store: the Gate's, and the operator tasks' (`fhir_server.operations`);
    # interactions never touch it (tests/security/test_enforcement_point.py)
    store: Store
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    # the verified caller; None only when authentication is off (auth=none: trusted use)
    actor: Actor | None = None
    access: AccessContext = field(default_factory=AccessContext)
    client: str | None = None
    server: ServerIdentity = field(default_factory=ServerIdentity)
    cache: RequestCache = field(default_factory=RequestCache)

    def now_iso(self) -> str:
        return self.clock().isoformat(timespec="microseconds")

    @property
    def trusted(self) -> bool:
        """No actor: the DMP policy is not applied (auth=none); audit still records."""
        return self.actor is None

    @cached_property
    def gate(self) -> Gate:
        from fhir_server.access.gate import Gate

        return Gate(self)
