"""The OpenAPI description, filled in where FastAPI cannot see: the routes take a raw
`Request` (FHIR bodies come in two formats and are validated by the FHIR models), so the
generated document has no request bodies, no search parameters and free-form path
parameters. This adds them, so clients and API fuzzers (schemathesis) reach real paths;
and, when the server verifies tokens, the bearer scheme the FHIR routes require."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fhir_server.fhir.resource_types import RESOURCE_TYPES

_TYPES = sorted(RESOURCE_TYPES)
_PATH = {
    "rtype": {"type": "string", "enum": _TYPES},
    "id": {"type": "string", "pattern": r"^[A-Za-z0-9\-\.]{1,64}$"},
    "vid": {"type": "string", "pattern": r"^[0-9]{1,6}$"},
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_COUNT = _query("_count", {"type": "integer", "minimum": 0}, "page size, capped by the server")
_CURSOR = _query("_cursor", {"type": "string"}, "opaque paging cursor from a next link")
_FORMAT = _query(
    "_format", {"type": "string", "enum": ["json", "xml", "application/fhir+json"]}, "format"
)
_SEARCH = [
    _query("_id", {"type": "string"}, "logical id(s), comma-separated"),
    _query("identifier", {"type": "string"}, "token system|value"),
    _query("patient", {"type": "string"}, "reference to the Patient"),
    _COUNT,
    _CURSOR,
    _FORMAT,
]
_HISTORY = [_COUNT, _CURSOR, _query("_since", {"type": "string"}, "instant"), _FORMAT]

_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": _TYPES},
        "id": {"type": "string"},
        "meta": {"type": "object"},
    },
    "additionalProperties": True,
}
_RESOURCE_BODY = {
    "required": True,
    "content": {
        "application/fhir+json": {"schema": _RESOURCE},
        "application/fhir+xml": {"schema": {"type": "string"}},
    },
}
_BUNDLE_BODY = {
    "required": True,
    "content": {
        "application/fhir+json": {
            "schema": {
                "type": "object",
                "required": ["resourceType", "type"],
                "properties": {
                    "resourceType": {"const": "Bundle"},
                    "type": {"type": "string", "enum": ["transaction", "batch"]},
                    "entry": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "fullUrl": {"type": "string"},
                                "resource": _RESOURCE,
                                "request": {
                                    "type": "object",
                                    "required": ["method", "url"],
                                    "properties": {
                                        "method": {
                                            "type": "string",
                                            "enum": ["GET", "POST", "PUT", "DELETE"],
                                        },
                                        "url": {"type": "string"},
                                        "ifMatch": {"type": "string"},
                                        "ifNoneExist": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            }
        }
    },
}
_PATCH_BODY = {
    "required": True,
    "content": {
        "application/json-patch+json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["op", "path"],
                    "properties": {
                        "op": {
                            "type": "string",
                            "enum": ["add", "remove", "replace", "test", "move", "copy"],
                        },
                        "path": {"type": "string"},
                        "from": {"type": "string"},
                        "value": {},
                    },
                },
            }
        },
        # FHIRPath Patch: a Parameters of `operation` parts
        "application/fhir+json": {
            "schema": {
                "type": "object",
                "required": ["resourceType"],
                "properties": {
                    "resourceType": {"type": "string", "enum": ["Parameters"]},
                    "parameter": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    },
}
_FORM_BODY = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {p["name"]: p["schema"] for p in _SEARCH if p["name"] != "_format"},
            }
        }
    }
}

# (method, path) -> what to add
_EXTRA: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/fhir"): {"requestBody": _BUNDLE_BODY},
    ("post", "/fhir/"): {"requestBody": _BUNDLE_BODY},
    ("post", "/fhir/{rtype}"): {"requestBody": _RESOURCE_BODY},
    ("get", "/fhir/{rtype}"): {"parameters": _SEARCH},
    ("patch", "/fhir/{rtype}"): {"parameters": _SEARCH[:3], "requestBody": _PATCH_BODY},
    ("post", "/fhir/{rtype}/_search"): {"requestBody": _FORM_BODY},
    ("get", "/fhir/{rtype}/_history"): {"parameters": _HISTORY},
    ("get", "/fhir/{rtype}/{id}"): {"parameters": [_FORMAT]},
    ("put", "/fhir/{rtype}/{id}"): {"requestBody": _RESOURCE_BODY},
    ("patch", "/fhir/{rtype}/{id}"): {"requestBody": _PATCH_BODY},
    ("get", "/fhir/{rtype}/{id}/_history"): {"parameters": _HISTORY},
    ("get", "/fhir/{rtype}/{id}/_history/{vid}"): {"parameters": [_FORMAT]},
}


BEARER = "bearer"
_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token of the issuer this server trusts (Pro Santé Connect, or "
    "the development issuer: `dmp-fhir token`): the token alone, sent as "
    "`Authorization: Bearer <token>`.",
}
# the FHIR routes open to anyone (as /health and the API description)
_OPEN = {("get", "/fhir/metadata")}


def enrich(schema: dict[str, Any], *, bearer: bool = False) -> dict[str, Any]:
    """With `bearer`, the token scheme is declared and required by every FHIR route but
    the capability statement (Swagger UI then shows its Authorize button)."""
    if bearer:
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER] = dict(
            _BEARER_SCHEME
        )
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if bearer and path.startswith("/fhir") and (method, path) not in _OPEN:
                operation["security"] = [{BEARER: []}]
            for param in operation.get("parameters", []):
                if param.get("in") == "path" and param["name"] in _PATH:
                    param["schema"] = dict(_PATH[param["name"]])
            extra = _EXTRA.get((method, path), {})
            if "parameters" in extra:
                operation["parameters"] = operation.get("parameters", []) + extra["parameters"]
            if "requestBody" in extra and "requestBody" not in operation:
                operation["requestBody"] = extra["requestBody"]
    return schema


def install(app: FastAPI, *, bearer: bool) -> None:
    """`bearer`: the server verifies tokens (any auth mode but "none")."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = enrich(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                bearer=bearer,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
