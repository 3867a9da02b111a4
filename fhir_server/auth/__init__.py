"""Authentication: who is calling (verified JWT -> Actor) and how (access mode headers)."""

from fhir_server.auth.actor import (
    ACCESS_MODE_ROLES,
    ROLES,
    AccessContext,
    AccessMode,
    Actor,
    Role,
    access_context_from_headers,
)

__all__ = [
    "ACCESS_MODE_ROLES",
    "ROLES",
    "AccessContext",
    "AccessMode",
    "Actor",
    "Role",
    "access_context_from_headers",
]
