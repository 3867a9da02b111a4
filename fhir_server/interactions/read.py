"""read and vread: the current resource or one version, once the policy permits (the
Gate decides on the last live version: every version follows the resource's labels now).
`fhir_document`: a FHIR document filed as a Binary, read as that Binary is."""

from __future__ import annotations

import base64
from typing import Any

from fhir_server import errors
from fhir_server.errors import FhirError
from fhir_server.fhir.fhir_document import document_bundle
from fhir_server.interactions.context import Context
from fhir_server.storage.port import Stored


async def read(ctx: Context, rtype: str, id: str) -> Stored:
    return await ctx.gate.read(rtype, id)


async def vread(ctx: Context, rtype: str, id: str, version: str) -> Stored:
    return await ctx.gate.vread(rtype, id, version)


async def fhir_document(ctx: Context, id: str) -> tuple[Stored, dict[str, Any]]:
    """`Bundle/{id}`: the document Bundle the Binary `id` holds, under its document's
    rules. Unknown, hidden, or not a FHIR document: one answer, that of an unknown id."""
    unknown = errors.not_found(f"Bundle/{id} is not known")
    try:
        stored = await ctx.gate.read("Binary", id)
    except FhirError as exc:
        if exc.status in (404, 410):
            raise unknown from None
        raise
    binary = stored.resource or {}
    data = stored.data if stored.data is not None else base64.b64decode(binary.get("data", ""))
    bundle = document_bundle(str(binary.get("contentType") or ""), data, id)
    if bundle is None:
        raise unknown
    return stored, bundle
