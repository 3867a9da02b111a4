"""Safe parsing of a CDA document: no network, no DTD, no entity expansion, bounded size.

Hostile XML (a DOCTYPE declaring entities, "billion laughs", external entities such as
SYSTEM "file:///etc/passwd") is refused before anything reads the tree: a CDA never needs a
DOCTYPE, so any DOCTYPE is refused outright.
"""

from __future__ import annotations

import re

from lxml import etree

from fhir_server.errors import FhirError, Issue
from fhir_server.xml_parsing import hardened_parser

HL7_NS = "urn:hl7-org:v3"
CDA_ROOT = f"{{{HL7_NS}}}ClinicalDocument"
# CI-SIS "autoprésentable" documents carry the ClinicalDocument inside the XSL stylesheet
# that renders it (the document is its own stylesheet: `<?xml-stylesheet href="#"?>`)
XSL_ROOT = "{http://www.w3.org/1999/XSL/Transform}stylesheet"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


_LOCATION_SUFFIX = re.compile(r", line \d+, column \d+$")


def _refuse(status: int, code: str, message: str) -> FhirError:
    return FhirError(status, [Issue(code, message)])


def _doctype_refusal() -> FhirError:
    return _refuse(
        400,
        "security",
        "CDA document refused: it contains a DOCTYPE declaration; DTDs and entity "
        "declarations are not allowed",
    )


def parse_cda(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse `data` and return the ClinicalDocument root, or raise FhirError (400/413)."""
    if len(data) > max_bytes:
        raise _refuse(
            413,
            "too-costly",
            f"CDA document refused: {len(data)} bytes exceeds the limit of {max_bytes} bytes",
        )
    if not data or data.isspace():  # strip() would copy the whole document
        raise _refuse(400, "structure", "CDA document refused: the body is empty")
    try:
        root = etree.fromstring(data, hardened_parser(keep_comments=True))
    except etree.XMLSyntaxError as exc:
        if b"<!DOCTYPE" in data:
            raise _doctype_refusal() from None
        line, column = exc.position
        reason = _LOCATION_SUFFIX.sub("", exc.msg or "syntax error")
        raise _refuse(
            400,
            "structure",
            f"CDA document is not well-formed XML: {reason} (line {line}, column {column})",
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype_refusal()
    if root.tag == XSL_ROOT:
        embedded = root.findall(f".//{CDA_ROOT}")
        if len(embedded) == 1:
            return embedded[0]
    if root.tag != CDA_ROOT:
        raise _refuse(
            400,
            "structure",
            f"Not a CDA document: the root element is {root.tag!s}, expected "
            f"ClinicalDocument in namespace {HL7_NS}",
        )
    return root
