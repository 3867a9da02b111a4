"""Every failure becomes an OperationOutcome with the status a FHIR client expects; no
stack trace ever reaches a client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.formats import JSON, XML, serialise
from fhir_server.errors import FhirError, Issue, operation_outcome
from fhir_server.storage.port import StoreUnavailable, UniqueViolation, VersionConflict

log = logging.getLogger("fhir_server")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported", 415: "not-supported"}


def _format(request: Request) -> str:
    # never fail while reporting a failure: fall back to JSON on an odd _format
    accept = (request.query_params.get("_format") or request.headers.get("accept", "")).lower()
    return XML if "xml" in accept else JSON


def outcome_response(request: Request, status: int, issues: list[Issue], headers=None) -> Response:
    fmt = _format(request)
    outcome = operation_outcome(issues)
    try:
        body = serialise(outcome, fmt)
    except Exception:  # never fail while reporting a failure: JSON always serialises
        log.exception("OperationOutcome not serialisable as %s", fmt)
        fmt, body = JSON, serialise(outcome, JSON)
    return Response(
        body,
        status_code=status,
        media_type=fmt + "; charset=utf-8",
        headers=headers,
    )


async def on_fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return outcome_response(request, exc.status, exc.issues, exc.headers or None)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    text = {404: "Unknown URL", 405: f"Method {request.method} is not allowed on this URL"}.get(
        status, str(exc.detail)
    )
    return outcome_response(request, status, [Issue(_HTTP_CODES.get(status, "processing"), text)])


async def on_validation_error(request: Request, exc: Exception) -> Response:
    return outcome_response(request, 400, [Issue("invalid", str(exc))])


async def on_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", exc)
    return outcome_response(
        request,
        503,
        [Issue("transient", "The database is unavailable; retry later")],
        {"Retry-After": "5"},
    )


async def on_recursion(request: Request, exc: Exception) -> Response:
    # a safety net behind the depth limits of the body parsers: input deep enough to
    # exhaust the stack is the client's fault, and the server is unharmed
    log.warning("recursion limit on %s %s", request.method, request.url.path)
    return outcome_response(
        request, 400, [Issue("too-costly", "The request is nested too deeply to process")]
    )


async def on_store_conflict(request: Request, exc: Exception) -> Response:
    # a write conflict no interaction absorbed (e.g. a MongoDB transaction aborted by a
    # concurrent session while writing an audit event): the client may retry, it is no 500
    log.warning("unabsorbed store conflict on %s %s: %s", request.method, request.url.path, exc)
    return outcome_response(
        request, 409, [Issue("conflict", "A concurrent change got in the way; retry")]
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return outcome_response(request, 500, [Issue("exception", "Internal server error")])


Handler = Callable[[Request, Exception], Awaitable[Response]]

HANDLERS: dict[type[BaseException], Handler] = {
    FhirError: on_fhir_error,
    HTTPException: on_http_error,
    RequestValidationError: on_validation_error,
    StoreUnavailable: on_unavailable,
    RecursionError: on_recursion,
    VersionConflict: on_store_conflict,
    UniqueViolation: on_store_conflict,
    Exception: on_unexpected,
}


def install(app: FastAPI) -> None:
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)


async def error_response(request: Request, exc: Exception) -> Response:
    """The response the installed handlers give `exc`, for a route served outside the
    framework's routing (`api.fast_routes`): the handler of its nearest class."""
    handler = next(HANDLERS[k] for k in type(exc).__mro__ if k in HANDLERS)
    return await handler(request, exc)
