"""A filed document whose content is a FHIR document (pure): a Binary of a FHIR JSON
media type holding a Bundle of type `document`, served as `Bundle/{id}` (PDSm4DMP TD3.2,
case 3), `{id}` being the Binary's. Any other content is not a FHIR document."""

from __future__ import annotations

from typing import Any

import orjson

FHIR_DOCUMENT_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json"})


def document_bundle(content_type: str, data: bytes, id: str) -> dict[str, Any] | None:
    """The document Bundle the content holds, under the id it is served by, or None."""
    if content_type.split(";")[0].strip().lower() not in FHIR_DOCUMENT_MEDIA_TYPES:
        return None
    try:
        bundle = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None
    if bundle.get("type") != "document":
        return None
    return {**bundle, "id": id}
