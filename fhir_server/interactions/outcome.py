"""The typed result an interaction hands back to the API layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.storage.port import Stored


@dataclass
class WriteOutcome:
    status: int  # 200 or 201
    stored: Stored
    # informational issues for Prefer: return=OperationOutcome
    message: str = ""

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def resource(self) -> dict[str, Any] | None:
        return self.stored.resource
