"""The CapabilityStatement, generated from what the server really serves: the resource
type table, its interactions and the search parameters the search module knows."""

from __future__ import annotations

from typing import Any

from fhir_server import FHIR_VERSION, __version__
from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.search.params import INCLUDES, describe_params

# operations this server defines (data: name, type it applies to, what it does)
OPERATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "import-cda",
        "DocumentReference",
        "File a CI-SIS CDA document: Patient by INS, Binary, PDSm DocumentReference",
    ),
    ("close", "Patient", "Close the patient's DMP (read-only, destroyed ten years later)"),
    ("reopen", "Patient", "Reopen a closed DMP"),
    ("link-mes", "Patient", "The holder activates Mon espace santé (dmp-rattachement-mes)"),
    ("authorisation", "Patient", "A professional's own authorisation status for the DMP"),
)


def _security(auth: str) -> dict[str, Any]:
    if auth == "none":
        return {"description": "Authentication is off (auth=none): trusted local use only"}
    return {
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "OAuth",
                    }
                ]
            }
        ],
        "description": "Bearer JWT (Pro Santé Connect / OIDC in production, a local issuer in "
        "development); DMP access rules, X-Access-Mode / X-Access-Justification headers",
    }


def capability_statement(base_url: str, *, auth: str = "dev") -> dict[str, Any]:
    resources = []
    for rt in RESOURCE_TYPES.values():
        entry: dict[str, Any] = {
            "type": rt.name,
            "interaction": [{"code": code} for code in rt.interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": "update" in rt.interactions,
            "conditionalCreate": rt.conditional_create and "create" in rt.interactions,
            "conditionalDelete": "single" if "delete" in rt.interactions else "not-supported",
            "searchParam": describe_params(rt.name),
        }
        if includes := [k for k, (source, _, _) in INCLUDES.items() if source == rt.name]:
            entry["searchInclude"] = includes
        if revincludes := [k for k, (_, _, target) in INCLUDES.items() if target == rt.name]:
            entry["searchRevInclude"] = revincludes
        if rt.profile:
            entry["profile"] = rt.profile
        resources.append(entry)
    # a filed FHIR document, read by its Binary's id (PDSm4DMP TD3.2; api/documents.py)
    resources.append(
        {
            "type": "Bundle",
            "interaction": [{"code": "read"}],
            "searchParam": [],
            "documentation": "A FHIR document filed as a Binary, read under its document's rules",
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "dmp-fhir-server", "version": __version__},
        "implementation": {"description": "DMP FHIR server", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(auth),
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {
                        "name": name,
                        "definition": f"{base_url}/OperationDefinition/{rtype}-{name}",
                        "documentation": doc,
                    }
                    for name, rtype, doc in OPERATIONS
                ],
            }
        ],
    }
