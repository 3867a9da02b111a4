"""A filed document whose content is a FHIR document (pure): a Binary of a FHIR JSON or
XML media type holding a Bundle of type `document`, served as `Bundle/{id}` (PDSm4DMP
TD3.2, case 3), `{id}` being the Binary's, in the format the client asks for. Any other
content is not a FHIR document."""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.fhir.xml import xml_to_resource

JSON_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json"})
XML_MEDIA_TYPES = frozenset({"application/fhir+xml"})
FHIR_DOCUMENT_MEDIA_TYPES = JSON_MEDIA_TYPES | XML_MEDIA_TYPES


def _parsed(media_type: str, data: bytes) -> Any:
    if media_type in JSON_MEDIA_TYPES:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    try:  # the hardened parser: a filed document is untrusted input
        return xml_to_resource(data)
    except FhirError:
        return None


def document_bundle(content_type: str, data: bytes, id: str) -> dict[str, Any] | None:
    """The document Bundle the content holds, under the id it is served by, or None."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in FHIR_DOCUMENT_MEDIA_TYPES:
        return None
    bundle = _parsed(media_type, data)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None
    if bundle.get("type") != "document":
        return None
    return {**bundle, "id": id}
