"""One line per request on the `fhir_server.access` logger: method, path, the names of the
query parameters, status, duration, and who asked (token `sub` and role, `-` when no
verified token).

Query values are never written: they carry INS, names and birth dates. The path is kept
as sent: the ids in it are random UUIDs, not identifiers. The actor is the one the request
was authenticated as (`authenticate` leaves it on `request.state`): no second verification.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from typing import Any
from urllib.parse import quote, unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.auth.actor import Actor

LOGGER = "fhir_server.access"
log = logging.getLogger(LOGGER)

# a query part is shown by its name only if it looks like a FHIR parameter name
# (`identifier`, `subject:Patient.name`, `_has:Observation:patient:code`); anything else
# may be a value sent without a name, and is shown as `?`
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
# what stays readable in a logged path; the rest is percent-encoded, so a path can neither
# split the line nor forge another
_PATH_SAFE = "/$:@-._~!*'(),;=+"


def query_names(query_string: bytes) -> str:
    """The query's parameter names in order (`patient&status`), never a value."""
    names = []
    for part in query_string.split(b"&"):
        if not part:
            continue
        raw, equals, _ = part.partition(b"=")
        name = unquote_plus(raw.decode("latin-1"))
        names.append(name if equals and _PARAMETER_NAME.fullmatch(name) else "?")
    return "&".join(names)


def request_target(path: str, query_string: bytes) -> str:
    shown = quote(path, safe=_PATH_SAFE)
    names = query_names(query_string)
    return f"{shown}?{names}" if names else shown


def actor_fields(actor: Actor | None) -> tuple[str, str]:
    """(sub, role) as logged; `-` for a request without a verified token."""
    if actor is None:
        return "-", "-"
    return quote(actor.sub, safe=_PATH_SAFE) or "-", quote(actor.role, safe=_PATH_SAFE) or "-"


class AccessLog:
    """ASGI middleware: registered outermost, so it times every route, the fast filing
    route included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # the request's state dict, shared with `request.state` downstream
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # an exception before the response started ends as a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            sub, role = actor_fields(state.get("actor"))
            log.info(
                "%s %s %d %.1fms sub=%s role=%s",
                scope["method"],
                request_target(scope["path"], scope.get("query_string", b"")),
                status,
                (time.perf_counter() - started) * 1000,
                sub,
                role,
            )


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the access log on its stderr handler at the
    server's log level."""
    from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"][LOGGER] = {
        "handlers": ["default"],
        "level": LOG_LEVELS.get(level.lower(), logging.INFO),
        "propagate": False,
    }
    return config
