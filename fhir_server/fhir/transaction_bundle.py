"""A transaction or batch Bundle as the server reads and answers it (pure): its entries,
where each error points, local references (`urn:uuid:` fullUrls) rewritten to the ids the
server assigns, and the response Bundle."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from fhir_server import errors
from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.attachment_urls import relative_binary_urls
from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.records import Stored, Write

# FHIR's processing order inside a transaction
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3}
WRITE_INTERACTION = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
    "GET": "read",
}
JSON_PATCH = "application/json-patch+json"


@dataclass
class Entry:
    index: int
    method: str
    rtype: str
    id: str | None
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None
    # the search of a conditional PATCH or DELETE (request.url `Type?query`)
    query: str = ""
    # a PATCH entry's body: FHIRPath Patch Parameters, or JSON Patch operations
    patch: Any = None
    # outcome
    write: Write | None = None
    # the audit and notifications that go with `write`, in the same commit
    extra: list[Write] = field(default_factory=list)
    # what a GET entry answers with, when the server resolved it already (a document filed
    # before, disclosed by `access.filing.refiled`); else it is read under the policy
    existing: Stored | None = None
    status: int = 200


def _where(i: int, element: str = "") -> str:
    return f"Bundle.entry[{i}]" + (f".{element}" if element else "")


def _parse_entry(i: int, raw: Any, base: str | None = None) -> Entry:
    if not isinstance(raw, dict):
        raise errors.bad_request("Each entry must be an object", _where(i))
    request = raw.get("request") or {}
    if not isinstance(request, dict):
        raise errors.bad_request("request must be an object", _where(i, "request"))
    for element, holder in (
        ("fullUrl", raw),
        ("request.url", request),
        ("request.ifNoneExist", request),
        ("request.ifMatch", request),
    ):
        value = holder.get(element.rsplit(".", 1)[-1])
        if value is not None and not isinstance(value, str):
            raise errors.bad_request(f"{element} must be a string", _where(i, element))
    method = str(request.get("method", "")).upper()
    url, _, query = (request.get("url") or "").partition("?")
    if "://" in url:
        # an absolute URL of this server (TD3.2 retrieves attachment.url as given)
        if base is None or not url.startswith(base.rstrip("/") + "/"):
            raise errors.bad_request(
                f"request.url {url!r} is not on this server", _where(i, "request.url")
            )
        url = url[len(base.rstrip("/")) + 1 :]
    url = url.strip("/")
    if method not in ORDER:
        raise errors.bad_request(
            f"Unsupported request.method {method!r}", _where(i, "request.method")
        )
    parts = url.split("/")
    rtype = parts[0]
    if method == "GET" and rtype == "Bundle" and len(parts) == 2 and parts[1]:
        # a FHIR document filed as a Binary, retrieved among others (PDSm4DMP TD3.2)
        return Entry(i, method, rtype, parts[1], None, raw.get("fullUrl"), None, None)
    rt = RESOURCE_TYPES.get(rtype)
    if rt is None:
        raise errors.bad_request(f"Unknown resource type in {url!r}", _where(i, "request.url"))
    if not rt.allows(WRITE_INTERACTION[method]):
        raise errors.method_not_allowed(f"{method} is not allowed on {rtype}")
    rid = parts[1] if len(parts) > 1 else None
    conditional = method in ("PATCH", "DELETE") and bool(query) and not rid
    if method in ("PUT", "DELETE", "GET", "PATCH") and not rid and not conditional:
        raise errors.bad_request(f"{method} needs Type/id in request.url", _where(i, "request.url"))
    resource = raw.get("resource")
    if base is not None:
        resource = relative_binary_urls(resource, base)
    if method in ("POST", "PUT", "PATCH") and not isinstance(resource, dict):
        raise errors.bad_request(f"{method} needs a resource", _where(i, "resource"))
    body = patch_body(i, resource) if method == "PATCH" else None
    return Entry(
        i,
        method,
        rtype,
        rid,
        None if method == "PATCH" else resource,
        raw.get("fullUrl"),
        request.get("ifNoneExist"),
        request.get("ifMatch"),
        query if conditional else "",
        body,
    )


def patch_body(i: int, resource: dict[str, Any]) -> Any:
    """A PATCH entry's body: a FHIRPath Patch `Parameters` as it is, a JSON Patch as the
    Binary FHIR carries it in a Bundle."""
    if resource.get("resourceType") == "Parameters":
        return resource
    if resource.get("resourceType") == "Binary" and resource.get("contentType") == JSON_PATCH:
        try:
            return orjson.loads(base64.b64decode(resource.get("data") or "", validate=True))
        except (ValueError, orjson.JSONDecodeError):
            raise errors.bad_request(
                "The Binary does not hold a JSON Patch", _where(i, "resource.data")
            ) from None
    raise errors.bad_request(
        f"A PATCH entry holds a FHIRPath Patch Parameters or a Binary of contentType {JSON_PATCH}",
        _where(i, "resource"),
    )


def rewrite(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: rewrite(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, mapping) for v in value]
    if isinstance(value, str) and value in mapping:
        return mapping[value]
    return value


def relocate(exc: FhirError, i: int) -> FhirError:
    """Point an entry's error at its place in the Bundle."""
    issues = [
        Issue(
            x.code,
            f"entry[{i}]: {x.diagnostics}",
            x.severity,
            tuple(
                _where(i, "resource." + e.split(".", 1)[1]) if "." in e else _where(i)
                for e in x.expression
            )
            or (_where(i),),
        )
        for x in exc.issues
    ]
    return FhirError(exc.status, issues, exc.headers)


def response_entry(base: str, e: Entry, stored: Stored | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": {200: "200 OK", 201: "201 Created", 204: "204 No Content"}[e.status]
    }
    out: dict[str, Any] = {}
    if stored is not None:
        out["fullUrl"] = f"{base}/{stored.rtype}/{stored.id}"
        response["etag"] = f'W/"{stored.version}"'
        response["lastModified"] = stored.last_updated
        if e.status == 201:
            response["location"] = f"{stored.rtype}/{stored.id}/_history/{stored.version}"
        if stored.resource is not None and e.method != "DELETE":
            out["resource"] = stored.resource
    out["response"] = response
    return out


def parse_bundle(bundle: Any, base: str | None = None) -> tuple[str, list[Entry]]:
    """The Bundle's type and entries; `base`: this server's base URL, which absolute
    request URLs must start with."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise errors.bad_request("POST [base] takes a Bundle of type transaction or batch")
    btype = bundle.get("type")
    if btype not in ("transaction", "batch"):
        raise errors.bad_request(
            f"Bundle.type must be transaction or batch, not {btype!r}", "Bundle.type"
        )
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise errors.bad_request("Bundle.entry must be a list", "Bundle.entry")
    return btype, [_parse_entry(i, e, base) for i, e in enumerate(raw)]


def response_bundle(base: str, entries: list[Entry], results: dict[int, Stored]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [response_entry(base, e, results.get(e.index)) for e in entries],
    }


def as_existing(entry: Entry, rtype: str, id: str, resolved: dict[str, str]) -> None:
    """Turn a create into a read of what the server holds already (answered 200)."""
    entry.method, entry.id = "GET", id
    if entry.full_url:
        resolved[entry.full_url] = f"{rtype}/{id}"
