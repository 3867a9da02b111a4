"""A record's operations: `$close` and `$reopen` (the holder closes a record, which stays
readable; the retention clock runs from the closure), `$link-mes` (the holder activates
Mon espace santé) and `$authorisation` (a professional's own authorisation status)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.formats import JSON, body_format, parse_body, read_body
from fhir_server.api.responses import fhir_response, write_response
from fhir_server.api.rest import base_url, context
from fhir_server.interactions import record

router = APIRouter()


@router.post("/Patient/{id}/$close")
async def close_record(request: Request, id: str) -> Response:
    raw = await read_body(request, request.app.state.ctx.settings.max_body_bytes)
    body = parse_body(raw, body_format(request) or JSON) if raw.strip() else None
    out = await record.set_closed(context(request), id, close=True, body=body)
    return write_response(request, out.stored, out.status, base_url(request))


@router.post("/Patient/{id}/$reopen")
async def reopen_record(request: Request, id: str) -> Response:
    out = await record.set_closed(context(request), id, close=False)
    return write_response(request, out.stored, out.status, base_url(request))


@router.post("/Patient/{id}/$link-mes")
async def link_mes(request: Request, id: str) -> Response:
    out = await record.link_mes(context(request), id)
    return write_response(request, out.stored, out.status, base_url(request))


@router.get("/Patient/{id}/$authorisation")
async def authorisation(request: Request, id: str) -> Response:
    return fhir_response(request, await record.authorisation(context(request), id))
