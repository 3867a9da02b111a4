"""HTTP responses for FHIR results: resource headers (ETag, Last-Modified, Location),
Prefer: return=..., and OperationOutcomes."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.formats import JSON, response_format, serialise
from fhir_server.errors import Issue, operation_outcome
from fhir_server.fhir.attachment_urls import absolute_binary_urls
from fhir_server.storage.port import Stored


def http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant), usegmt=True)


def fhir_response(
    request: Request,
    body: dict[str, Any] | bytes | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    fmt = response_format(request)
    if body is None:
        return Response(status_code=status, headers=headers)
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    raw = absolute_binary_urls(raw, request.app.state.ctx.settings.base_url())
    return Response(
        serialise(raw, fmt),
        status_code=status,
        media_type=f"{fmt}; charset=utf-8" if fmt != JSON else JSON + "; charset=utf-8",
        headers=headers,
    )


def resource_headers(stored: Stored, base: str, *, location: bool) -> dict[str, str]:
    headers = {"ETag": f'W/"{stored.version}"', "Last-Modified": http_date(stored.last_updated)}
    if location:
        headers["Location"] = f"{base}/{stored.rtype}/{stored.id}/_history/{stored.version}"
    return headers


def prefer(request: Request, key: str) -> str | None:
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            k, _, v = item.strip().partition("=")
            if k.strip().lower() == key:
                return v.strip().strip('"').lower()
    return None


def write_response(
    request: Request, stored: Stored, status: int, base: str, message: str = ""
) -> Response:
    headers = resource_headers(stored, base, location=status == 201)
    # a write that deleted (PATCH to entered-in-error) has no resource to return
    wanted = "operationoutcome" if stored.deleted else prefer(request, "return")
    if wanted == "minimal":
        return fhir_response(request, None, status, headers)
    if wanted == "operationoutcome":
        text = message or ("Created" if status == 201 else "Updated")
        outcome = operation_outcome(
            [Issue("informational", f"{text}: {stored.rtype}/{stored.id}", severity="information")]
        )
        return fhir_response(request, outcome, status, headers)
    return fhir_response(request, stored.content or stored.resource, status, headers)
