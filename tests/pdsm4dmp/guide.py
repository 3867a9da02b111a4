"""The request shapes of the ANS guide (ansforge/IG-FHIR-PDSM4DMP-EEDS, input/examples),
with its placeholder CDA and its invalid example INS replaced by valid fixtures."""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

from fhir_server.cda.mapping import map_cda
from fhir_server.fhir.mhd import MHD_LIST_TYPES, PDSM
from tests.conftest import INS_TEST_SYSTEM, VALID_INS

FHIR = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
JSON_PATCH = "application/json-patch+json"
# the guide's `Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|123456789012345`, with the
# ANS test INS (its example NIR has a wrong key)
INS_REF = f"Patient?identifier={INS_TEST_SYSTEM}|{VALID_INS}"
TRE_A07 = "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
IS_ARCHIVED = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def label(code: str) -> dict[str, Any]:
    system = CONFIDENTIALITY if code == "N" else TRE_A07
    return {"coding": [{"system": system, "code": code}]}


def submission_set(doc_url: str, subject: str = INS_REF) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "meta": {"profile": [PDSM + "pdsm-submissionset-comprehensive"]},
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": MHD_LIST_TYPES, "code": "submissionset"}]},
        "subject": {"reference": subject},
        "date": "2026-06-12T10:00:00+02:00",
        "entry": [{"item": {"reference": doc_url}}],
    }


def document_reference(data: bytes, binary_url: str, subject: str = INS_REF) -> dict[str, Any]:
    """The PDSm DocumentReference of a CDA, its subject the guide's conditional reference."""
    doc = copy.deepcopy(map_cda(data, binary_id="x").document_reference)
    attachment = doc["content"][0]["attachment"]
    attachment["url"] = binary_url
    del attachment["size"], attachment["hash"]
    doc["subject"] = {"reference": subject}
    return doc


def binary(data: bytes) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "contentType": "application/xml",
        "data": base64.b64encode(data).decode(),
    }


def entry(url: str, resource: dict[str, Any], method: str, request_url: str) -> dict[str, Any]:
    return {"fullUrl": url, "resource": resource, "request": {"method": method, "url": request_url}}


def iti65(
    data: bytes, subject: str = INS_REF, *extra: dict[str, Any], replaces: str | None = None
) -> dict[str, Any]:
    """TD2 `Bundle-example-td2-iti65-lot-soumission`: SubmissionSet, document, Binary;
    TD2.1 `Bundle-example-td2-1-remplacement` with `replaces` and a PATCH entry in `extra`."""
    urls = {"set": urn(), "doc": urn(), "bin": urn()}
    doc = document_reference(data, urls["bin"], subject)
    if replaces is not None:
        doc["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{replaces}"}}
        ]
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [PDSM + "pdsm-comprehensive-provide-document-bundle"]},
        "type": "transaction",
        "entry": [
            entry(urls["set"], submission_set(urls["doc"], subject), "POST", "List"),
            entry(urls["doc"], doc, "POST", "DocumentReference"),
            *extra,
            entry(urls["bin"], binary(data), "POST", "Binary"),
        ],
    }


def fhirpath_patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """A FHIRPath Patch `Parameters`: each operation as {type, path, name?, value?...}."""
    params = []
    for op in operations:
        parts: list[dict[str, Any]] = []
        for name, value in op.items():
            if name == "value":
                parts.append({"name": "value", **value})
            elif name in ("type",):
                parts.append({"name": name, "valueCode": value})
            elif name in ("index", "source", "destination"):
                parts.append({"name": name, "valueInteger": value})
            else:
                parts.append({"name": name, "valueString": value})
        params.append({"name": "operation", "part": parts})
    return {"resourceType": "Parameters", "parameter": params}


def supersede_entry(doc_id: str) -> dict[str, Any]:
    """TD2.1: the PATCH entry that sets the replaced document `superseded`."""
    body = fhirpath_patch(
        {
            "type": "replace",
            "path": "DocumentReference.status",
            "value": {"valueCode": "superseded"},
        }
    )
    return entry(urn(), body, "PATCH", f"DocumentReference/{doc_id}")


def doc_of(bundle_response: dict[str, Any]) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in bundle_response["entry"]
        if e.get("resource", {}).get("resourceType") == "DocumentReference"
    )
