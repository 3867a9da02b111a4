"""Content negotiation: which format a request body is in, which one the client wants back
(`_format` beats `Accept`; JSON is the default), and serialisation in both."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from fhir_server import errors
from fhir_server.errors import FhirError, Issue
from fhir_server.fhir import patches
from fhir_server.fhir.numbers import is_digits
from fhir_server.fhir.xml import resource_to_xml, xml_to_resource

# deepest nesting accepted in a body (JSON arrays/objects, XML elements); real FHIR
# resources, Bundles included, stay far below it
MAX_DEPTH = 64

JSON = "application/fhir+json"
XML = "application/fhir+xml"

_FORMAT_ALIASES = {
    "json": JSON,
    "application/json": JSON,
    "application/fhir+json": JSON,
    "application/json+fhir": JSON,
    "xml": XML,
    "text/xml": XML,
    "application/xml": XML,
    "application/fhir+xml": XML,
    "application/xml+fhir": XML,
}


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def body_format(request: Request) -> str | None:
    """JSON or XML for a FHIR body, None for any other (raw) content type."""
    return _FORMAT_ALIASES.get(media_type(request.headers.get("content-type")))


def _accepted(accept: str) -> str | None:
    for part in accept.split(","):
        fmt = _FORMAT_ALIASES.get(media_type(part))
        if fmt:
            return fmt
    return None


def explicit_format(request: Request) -> str | None:
    """The FHIR format the client named (by _format or Accept), if any."""
    fmt = request.query_params.get("_format")
    if fmt:
        found = _FORMAT_ALIASES.get(fmt.strip().lower())
        if found is None:
            raise errors.FhirError(
                406, [errors.Issue("not-supported", f"_format {fmt!r} is not supported")]
            )
        return found
    return _accepted(request.headers.get("accept", ""))


# media types of XML content: asked for on a Binary holding XML (a CDA), they mean its bytes
XML_CONTENT = frozenset({"application/xml", "text/xml", "application/hl7-cda+xml"})
RAW = "raw"


def _weighted(accept: str) -> list[str]:
    """The media types of an Accept header, best first (q-values, then the order sent);
    those with q=0 left out."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        media, *params = (x.strip() for x in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, i, media.lower()))
    return [m for _, _, m in sorted(ranked)]


def binary_format(accept: str, content_type: str) -> str | None:
    """What a Binary read answers (pure): RAW for its bytes, a FHIR format for the Binary
    resource, None when the Accept header names nothing of either (then: the bytes).
    `application/xml` / `text/xml` name the bytes when the content is XML (ITI-68: the
    CDA as filed, « application/xml pour CDA »), the FHIR XML Binary otherwise."""
    own = media_type(content_type)
    for media in _weighted(accept):
        if media in (own, "*/*", own.split("/")[0] + "/*"):
            return RAW
        if media in XML_CONTENT and own in XML_CONTENT:
            return RAW
        if media in _FORMAT_ALIASES:
            return _FORMAT_ALIASES[media]
    return None


def response_format(request: Request) -> str:
    return explicit_format(request) or JSON


def parse_body(raw: bytes, fmt: str | None) -> Any:
    if fmt is None:
        raise errors.FhirError(
            415,
            [
                errors.Issue(
                    "not-supported",
                    "Unsupported Content-Type: send application/fhir+json or application/fhir+xml",
                )
            ],
        )
    if not raw.strip():
        raise errors.bad_request("The request body is empty")
    if fmt == XML:
        return xml_to_resource(raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"The JSON is not well-formed: {exc}") from None
    check_depth(value)
    return value


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` arrays/objects. orjson stops at 1024 levels,
    but the model validation, the XML writer and the index extraction recurse in Python
    and overflow the stack far sooner (a 300-level extension chain gave a 500)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise too_deep(limit)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


def too_deep(limit: int) -> errors.FhirError:
    return errors.bad_request(
        f"The body is nested more than {limit} levels deep", code="too-costly"
    )


def serialise(resource: dict[str, Any] | bytes, fmt: str) -> bytes:
    if fmt == XML:
        return resource_to_xml(orjson.loads(resource) if isinstance(resource, bytes) else resource)
    return resource if isinstance(resource, bytes) else orjson.dumps(resource)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 past the limit, also when streamed without a
    Content-Length (the count is kept while reading, never after)."""
    declared = request.headers.get("content-length")
    if declared and is_digits(declared) and (len(declared) > 18 or int(declared) > limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> errors.FhirError:
    return errors.FhirError(
        413, [errors.Issue("too-costly", f"The request body exceeds the limit of {limit} bytes")]
    )


async def read_patch(request: Request, max_bytes: int) -> Any:
    """JSON Patch (`application/json-patch+json`) or FHIRPath Patch (a `Parameters` in
    `application/fhir+json` or `application/fhir+xml`)."""
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    fhir = ctype in ("application/fhir+json", "application/fhir+xml")
    if ctype not in ("application/json-patch+json", "application/json") and not fhir:
        raise FhirError(
            415,
            [
                Issue(
                    "not-supported",
                    "PATCH takes application/json-patch+json (JSON Patch) or a FHIRPath Patch "
                    "Parameters in application/fhir+json",
                )
            ],
        )
    raw = await read_body(request, max_bytes)
    body = parse_body(raw, ctype if fhir else "application/fhir+json")
    if fhir and not patches.is_fhirpath_patch(body):
        raise FhirError(
            415,
            [
                Issue(
                    "not-supported",
                    f"A PATCH in {ctype} is a FHIRPath Patch Parameters; a JSON Patch is sent "
                    "as application/json-patch+json",
                )
            ],
        )
    return body
