"""Document routes: raw CDA filing (`$import-cda`) and a FHIR document read as a Bundle
(`GET Bundle/{id}`, PDSm4DMP TD3.2). MHD ITI-65 and ITI-105 arrive on the generic routes
(`POST [base]`, `POST [base]/DocumentReference`) and are told apart there."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.formats import media_type, read_body
from fhir_server.api.responses import fhir_response, resource_headers, write_response
from fhir_server.api.rest import base_url, context
from fhir_server.errors import FhirError, Issue
from fhir_server.interactions import import_cda, read

router = APIRouter()
IMPORT_CDA_PATH = "/DocumentReference/$import-cda"


def _unsupported(found: str) -> FhirError:
    allowed = ", ".join(sorted(import_cda.CDA_MEDIA_TYPES))
    return FhirError(
        415,
        [Issue("not-supported", f"$import-cda takes a CDA document ({allowed}), not {found!r}")],
    )


@router.post(IMPORT_CDA_PATH)
async def import_cda_route(request: Request) -> Response:
    found = media_type(request.headers.get("content-type"))
    if found not in import_cda.CDA_MEDIA_TYPES:
        raise _unsupported(found)
    data = await read_body(request, request.app.state.ctx.settings.max_body_bytes)
    labels = import_cda.security_labels(request.query_params.getlist("security-label"))
    out = await import_cda.import_cda(context(request), data, labels)
    return write_response(request, out.stored, out.status, base_url(request), out.message)


@router.get("/Bundle/{id}")
async def fhir_document_route(request: Request, id: str) -> Response:
    stored, bundle = await read.fhir_document(context(request), id)
    headers = resource_headers(stored, base_url(request), location=False)
    return fhir_response(request, bundle, 200, headers)
