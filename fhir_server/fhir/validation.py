"""Validation of a resource on write: structure (fhir.resources R4B models, serving R4
4.0.1), identity of the resource against the URL, and the business rules of this server
(INS key). Pure: raises FhirError, touches nothing."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from fhir_server.errors import FhirError, Issue, bad_request
from fhir_server.fhir.bindings import binding_issues
from fhir_server.fhir.ins import INS_SYSTEMS, nir_problem
from fhir_server.fhir.resource_types import RESOURCE_TYPES

ID_RE = re.compile(r"[A-Za-z0-9\-\.]{1,64}")
# FHIR strings are [ \r\n\t\S]+: no other control characters (XML 1.0 cannot carry them,
# so a stored NUL made every XML read of the resource a 500); nor U+FFFE/U+FFFF
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def check_id(id: str) -> str:
    if not ID_RE.fullmatch(id):
        raise bad_request(f"Invalid resource id {id!r}: expected [A-Za-z0-9-.]{{1,64}}", "id")
    return id


def _location(loc: tuple[Any, ...], rtype: str) -> str:
    path = rtype
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "__root__":
            path += f".{part}"
    return path


def _structure_issues(rtype: str, resource: dict[str, Any]) -> list[Issue]:
    model = RESOURCE_TYPES[rtype].model
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            Issue(
                "structure" if err["type"] != "extra_forbidden" else "invalid",
                f"{err['msg']}",
                expression=(_location(tuple(err["loc"]), rtype),),
            )
            for err in exc.errors()[:50]
        ]
    except (ValueError, TypeError) as exc:
        return [Issue("structure", str(exc), expression=(rtype,))]
    return []


def _ins_issues(resource: dict[str, Any]) -> list[Issue]:
    issues = []
    for i, ident in enumerate(resource.get("identifier") or []):
        if not isinstance(ident, dict) or ident.get("system") not in INS_SYSTEMS:
            continue
        value = str(ident.get("value") or "")
        if problem := nir_problem(value):
            issues.append(
                Issue(
                    "business-rule",
                    f"{INS_SYSTEMS[ident['system']]} '{value}' {problem}",
                    expression=(f"Patient.identifier[{i}].value",),
                )
            )
    return issues


def _character_issues(rtype: str, resource: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    stack: list[tuple[Any, str]] = [(resource, rtype)]
    while stack and len(issues) < 10:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if _FORBIDDEN_CHARS.search(key):
                    issues.append(
                        Issue(
                            "invalid", "Control character in an element name", expression=(where,)
                        )
                    )
                stack.append((value, f"{where}.{key}"))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
        elif isinstance(node, str) and _FORBIDDEN_CHARS.search(node):
            issues.append(
                Issue(
                    "invalid",
                    "Control characters are not allowed in FHIR strings",
                    expression=(where,),
                )
            )
    return issues


def validate_resource(
    rtype: str, resource: Any, *, url_id: str | None = None, require_id: bool = False
) -> dict[str, Any]:
    """Check a parsed body before it is stored; return it unchanged when valid."""
    if not isinstance(resource, dict):
        raise bad_request("The body must be a FHIR resource (a JSON object)")
    found = resource.get("resourceType")
    if found != rtype:
        raise bad_request(
            f"resourceType {found!r} does not match the URL's type {rtype!r}", "resourceType"
        )
    rid = resource.get("id")
    if rid is not None:
        if not isinstance(rid, str):
            raise bad_request("id must be a string", f"{rtype}.id")
        check_id(rid)
    if url_id is not None and rid != url_id:
        raise bad_request(
            f"The resource id {rid!r} must equal the id in the URL {url_id!r}", f"{rtype}.id"
        )
    if require_id and rid is None:
        raise bad_request("An update must carry the resource id", f"{rtype}.id")
    issues = _character_issues(rtype, resource)
    if issues:
        raise FhirError(400, issues)
    issues = _structure_issues(rtype, resource) + binding_issues(rtype, resource)
    if issues:
        raise FhirError(400, issues)
    if rtype == "Patient":
        issues = _ins_issues(resource)
        if issues:
            raise FhirError(422, issues)
    return resource
