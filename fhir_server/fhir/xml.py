"""FHIR XML in and out, through the fhir.resources models (R4B; same wire format as R4 for
the resources served here). Input is first parsed by a hardened lxml parser: no DTD, no
entities, no network, so XXE and entity expansion never reach the model's parser."""

from __future__ import annotations

from typing import Any

from lxml import etree
from pydantic import ValidationError

from fhir_server.errors import FhirError, Issue, bad_request
from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.xml_parsing import hardened_parser

FHIR_NS = "{http://hl7.org/fhir}"
MAX_DEPTH = 64


def safe_parse(data: bytes) -> etree._Element:
    """Parse untrusted XML; a DOCTYPE (hence any entity declaration) is refused."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise bad_request("XML with a DOCTYPE is refused (no DTDs, no entities)", code="security")
    try:
        root = etree.fromstring(data, hardened_parser(keep_comments=False))
    except etree.XMLSyntaxError as exc:
        raise bad_request(f"The XML is not well-formed: {exc}") from None
    if root is None:
        raise bad_request("The XML document is empty")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise bad_request("XML with a DOCTYPE is refused (no DTDs, no entities)", code="security")
    check_depth(root)
    return root


def check_depth(root: etree._Element, limit: int = MAX_DEPTH) -> None:
    """Refuse elements nested deeper than `limit` (lxml allows 256; the model's XML reader
    and writer recurse in Python and overflow well before that)."""
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > limit:
            raise bad_request(
                f"The XML is nested more than {limit} elements deep", code="too-costly"
            )


def xml_to_resource(data: bytes) -> dict[str, Any]:
    root = safe_parse(data)
    tag = root.tag if isinstance(root.tag, str) else ""
    if not tag.startswith(FHIR_NS):
        raise bad_request(
            "The XML root must be a FHIR resource in the http://hl7.org/fhir namespace"
        )
    rtype = tag[len(FHIR_NS) :]
    if rtype not in RESOURCE_TYPES and rtype not in ("Bundle", "Parameters"):
        raise bad_request(f"Resource type {rtype!r} is not supported here")
    model = _model(rtype)
    try:
        obj = model.model_validate_xml(etree.tostring(root))
    except ValidationError as exc:
        raise FhirError(
            400,
            [
                Issue("structure", e["msg"], expression=(".".join(map(str, e["loc"])) or rtype,))
                for e in exc.errors()[:50]
            ],
        ) from None
    except Exception as exc:  # the model's XML reader raises plain errors on odd input
        raise bad_request(f"The XML is not a valid FHIR {rtype}: {exc}") from None
    return obj.model_dump(mode="json", exclude_none=True)


def _model(rtype: str) -> type:
    if rtype in RESOURCE_TYPES:
        return RESOURCE_TYPES[rtype].model
    if rtype == "Bundle":
        from fhir.resources.R4B.bundle import Bundle

        return Bundle
    if rtype == "OperationOutcome":
        from fhir.resources.R4B.operationoutcome import OperationOutcome

        return OperationOutcome
    if rtype == "CapabilityStatement":
        from fhir.resources.R4B.capabilitystatement import CapabilityStatement

        return CapabilityStatement
    from fhir.resources.R4B.parameters import Parameters

    return Parameters


def resource_to_xml(resource: dict[str, Any]) -> bytes:
    model = _model(resource["resourceType"])
    return model.model_validate(resource).model_dump_xml()
