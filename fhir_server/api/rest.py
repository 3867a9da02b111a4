"""The FHIR RESTful interactions on [base]/{type}: HTTP in, typed calls to
`interactions`, HTTP out. No rules live here."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import errors
from fhir_server.api.formats import (
    JSON,
    RAW,
    binary_format,
    body_format,
    parse_body,
    read_body,
    read_patch,
    response_format,
)
from fhir_server.api.responses import fhir_response, prefer, resource_headers, write_response
from fhir_server.api.security import authenticate
from fhir_server.fhir.attachment_urls import relative_binary_urls
from fhir_server.fhir.bundle import history_bundle, searchset_bundle
from fhir_server.fhir.numbers import capped
from fhir_server.fhir.resource_types import RESOURCE_TYPES, ResourceType
from fhir_server.fhir.transaction_bundle import parse_bundle
from fhir_server.interactions import (
    create,
    delete,
    history,
    patch,
    provide_document,
    read,
    search,
    simplified_publish,
    update,
)
from fhir_server.interactions.context import Context
from fhir_server.storage.port import Stored

router = APIRouter()


def context(request: Request) -> Context:
    """A fresh interaction context for this request: who asks (verified token), how
    (access mode), from where."""
    app_ctx: Context = request.app.state.ctx
    actor, access = authenticate(request)
    return Context(
        app_ctx.store,
        app_ctx.settings,
        app_ctx.clock,
        actor=actor,
        access=access,
        client=request.client.host if request.client else None,
        server=app_ctx.server,
    )


def base_url(request: Request) -> str:
    return request.app.state.ctx.settings.base_url()


def resource_type(rtype: str, interaction: str) -> ResourceType:
    rt = RESOURCE_TYPES.get(rtype)
    if rt is None:
        raise errors.not_found(f"Resource type {rtype!r} is not supported by this server")
    if not rt.allows(interaction):
        raise errors.method_not_allowed(f"{interaction} is not allowed on {rtype}")
    return rt


async def _resource_body(request: Request, rtype: str) -> Any:
    limit = request.app.state.ctx.settings.max_body_bytes
    raw = await read_body(request, limit)
    fmt = body_format(request)
    if rtype == "Binary" and fmt is None:
        # raw content posted as-is becomes a Binary (FHIR: native content type)
        content_type = request.headers.get("content-type") or "application/octet-stream"
        return {
            "resourceType": "Binary",
            "contentType": content_type.split(";")[0].strip(),
            "data": base64.b64encode(raw).decode(),
        }
    return relative_binary_urls(parse_body(raw, fmt), base_url(request))


def _binary_raw(request: Request, stored: Stored) -> Response | None:
    """Binary read returns the document's own bytes unless a FHIR format is asked for
    (`_format`, or an Accept that prefers one: `formats.binary_format`)."""
    if stored.rtype != "Binary" or request.query_params.get("_format"):
        return None
    res = stored.resource or {}
    wanted = binary_format(request.headers.get("accept", ""), res.get("contentType", ""))
    if wanted not in (None, RAW):
        return None
    # the bytes as the store keeps them, when it keeps them apart; else decoded from JSON
    data = stored.data if stored.data is not None else base64.b64decode(res.get("data", ""))
    headers = resource_headers(stored, base_url(request), location=False)
    return Response(
        data, media_type=res.get("contentType", "application/octet-stream"), headers=headers
    )


def _query(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


# -- type level --------------------------------------------------------------------------

# query parameters of a create that shape the answer rather than name a condition
_ANSWER_PARAMS = frozenset({"_format", "_pretty"})


def _create_condition(request: Request) -> str | None:
    """The conditional create's search: the If-None-Exist header, or the same search as
    the URL's query (`POST [type]?[search]`, as fhirpy's get_or_create sends it)."""
    header = request.headers.get("if-none-exist")
    query = [(k, v) for k, v in _query(request) if k not in _ANSWER_PARAMS]
    if header is not None and query:
        raise errors.bad_request(
            "A conditional create names its search once: in If-None-Exist or in the query"
        )
    return header if header is not None else (urlencode(query) if query else None)


@router.post("/{rtype}")
async def create_route(request: Request, rtype: str) -> Response:
    resource_type(rtype, "create")
    body = await _resource_body(request, rtype)
    if rtype == "DocumentReference" and simplified_publish.has_attachment_data(body):
        out = await simplified_publish.simplified_publish(context(request), body)  # ITI-105
        return write_response(request, out.stored, out.status, base_url(request), out.message)
    out = await create.create(
        context(request), rtype, body, if_none_exist=_create_condition(request)
    )
    return write_response(request, out.stored, out.status, base_url(request), out.message)


async def _search(request: Request, rtype: str, params: list[tuple[str, str]]) -> Response:
    resource_type(rtype, "search-type")
    # unknown parameters are refused (400) unless the client asks for lenient handling
    strict = prefer(request, "handling") != "lenient"
    out = await search.search(context(request), rtype, params, strict=strict)
    result = out.result
    bundle = searchset_bundle(
        base_url(request),
        rtype,
        params,
        result.entries,
        result.next_cursor,
        total=result.total,
        included=result.included,
        outcome=out.outcome(),
        fragments=response_format(request) == JSON,
    )
    return fhir_response(request, bundle)


@router.get("/{rtype}")
async def search_get(request: Request, rtype: str) -> Response:
    return await _search(request, rtype, _query(request))


@router.post("/{rtype}/_search")
async def search_post(request: Request, rtype: str) -> Response:
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip()
    if ctype != "application/x-www-form-urlencoded":
        raise errors.FhirError(
            415,
            [errors.Issue("not-supported", "POST _search takes application/x-www-form-urlencoded")],
        )
    # parsed here, within the body limit: Starlette's request.form() needs python-multipart,
    # which is not a dependency
    raw = await read_body(request, request.app.state.ctx.settings.max_body_bytes)
    try:
        form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.bad_request(f"The form body cannot be read: {exc}") from None
    return await _search(request, rtype, _query(request) + form)


@router.get("/{rtype}/_history")
async def type_history(request: Request, rtype: str) -> Response:
    resource_type(rtype, "history-type")
    return await _history(request, rtype, None)


async def _history(request: Request, rtype: str, id: str | None) -> Response:
    settings = request.app.state.ctx.settings
    q = request.query_params
    count = capped(q.get("_count", str(settings.default_count)), settings.max_count)
    if count is None:
        raise errors.bad_request("_count must be a whole number", "_count")
    page = await history.history(
        context(request),
        rtype,
        id,
        count=max(1, count),
        cursor=q.get("_cursor"),
        since=q.get("_since"),
    )
    path = f"{rtype}/{id}/_history" if id else f"{rtype}/_history"
    bundle = history_bundle(
        base_url(request), path, _query(request), page.entries, page.next_cursor
    )
    return fhir_response(request, bundle)


# -- instance level ----------------------------------------------------------------------


@router.get("/{rtype}/{id}")
async def read_route(request: Request, rtype: str, id: str) -> Response:
    resource_type(rtype, "read")
    stored = await read.read(context(request), rtype, id)
    raw = _binary_raw(request, stored)
    if raw is not None:
        return raw
    headers = resource_headers(stored, base_url(request), location=False)
    return fhir_response(request, stored.content or stored.resource, 200, headers)


@router.put("/{rtype}/{id}")
async def update_route(request: Request, rtype: str, id: str) -> Response:
    resource_type(rtype, "update")
    body = await _resource_body(request, rtype)
    if rtype == "Binary" and isinstance(body, dict) and body_format(request) is None:
        body["id"] = id
    out = await update.update(
        context(request), rtype, id, body, if_match=request.headers.get("if-match")
    )
    return write_response(request, out.stored, out.status, base_url(request))


@router.patch("/{rtype}/{id}")
async def patch_route(request: Request, rtype: str, id: str) -> Response:
    resource_type(rtype, "patch")
    ops = await read_patch(request, request.app.state.ctx.settings.max_body_bytes)
    out = await patch.patch(
        context(request), rtype, id, ops, if_match=request.headers.get("if-match")
    )
    return write_response(request, out.stored, out.status, base_url(request))


@router.patch("/{rtype}")
async def conditional_patch_route(request: Request, rtype: str) -> Response:
    resource_type(rtype, "patch")
    ops = await read_patch(request, request.app.state.ctx.settings.max_body_bytes)
    ctx = context(request)
    id = await patch.resolve_conditional(ctx, rtype, request.url.query)
    out = await patch.patch(ctx, rtype, id, ops, if_match=request.headers.get("if-match"))
    return write_response(request, out.stored, out.status, base_url(request))


@router.delete("/{rtype}/{id}")
async def delete_route(request: Request, rtype: str, id: str) -> Response:
    resource_type(rtype, "delete")
    await delete.delete(context(request), rtype, id)
    return Response(status_code=204)


@router.delete("/{rtype}")
async def conditional_delete_route(request: Request, rtype: str) -> Response:
    """Conditional delete (TD3.3c by uniqueId): the one resource the actor may see that the
    query names, deleted under the same rules as DELETE by id."""
    resource_type(rtype, "delete")
    ctx = context(request)
    id = await patch.resolve_conditional(ctx, rtype, request.url.query)
    await delete.delete(ctx, rtype, id)
    return Response(status_code=204)


@router.get("/{rtype}/{id}/_history")
async def instance_history(request: Request, rtype: str, id: str) -> Response:
    resource_type(rtype, "history-instance")
    return await _history(request, rtype, id)


@router.get("/{rtype}/{id}/_history/{vid}")
async def vread_route(request: Request, rtype: str, id: str, vid: str) -> Response:
    resource_type(rtype, "vread")
    stored = await read.vread(context(request), rtype, id, vid)
    raw = _binary_raw(request, stored)
    if raw is not None:
        return raw
    headers = resource_headers(stored, base_url(request), location=False)
    return fhir_response(request, stored.content or stored.resource, 200, headers)


# -- system level ------------------------------------------------------------------------


async def bundle_route(request: Request) -> Response:
    from fhir_server.interactions import transaction

    limit = request.app.state.ctx.settings.max_body_bytes
    body = parse_body(await read_body(request, limit), body_format(request))
    btype, entries = parse_bundle(body, base_url(request))
    if btype == "transaction" and provide_document.is_provide_bundle(entries):
        result = await provide_document.provide_bundle(context(request), body, base_url(request))
        return fhir_response(request, result)  # ITI-65
    run = transaction.transaction if btype == "transaction" else transaction.batch
    result = await run(context(request), entries, base_url(request))
    return fhir_response(request, result)
