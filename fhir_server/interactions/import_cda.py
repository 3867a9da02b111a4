"""$import-cda: file one raw CDA document as Patient (if new) + Binary + DocumentReference
+ its structured content (`structured_content`), superseding the document it replaces,
in ONE atomic commit.

`prepare_import` does the lookups and returns the writes; `import_cda` commits them. The
seam between the two is where another write (an AuditEvent) joins the same commit.
Duplicates are answered with the filed document (DMP: the same uniqueId is stored once),
also when two filings race: the database's unique keys decide, never a read-then-write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from fhir_server import errors
from fhir_server.access import filing
from fhir_server.cda.mapping import CDA_CONTENT_TYPE, CdaMapping, map_cda
from fhir_server.fhir import mhd
from fhir_server.fhir.server_fields import on_create
from fhir_server.fhir.uniqueness import DOCUMENT_KEY, PATIENT_KEY
from fhir_server.interactions import replacement, structured_content
from fhir_server.interactions.context import Context
from fhir_server.interactions.create import duplicate_error
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.retry import Again, retry
from fhir_server.interactions.versioning import make_write, new_id
from fhir_server.storage.port import Stored, UniqueViolation, VersionConflict, Write

CDA_MEDIA_TYPES = mhd.CDA_MEDIA_TYPES
# a race costs a retry (patient created meanwhile, replaced document changed meanwhile, the
# same document being written by another filing)
RETRY_PAUSE_S = 0.01


@dataclass
class PreparedImport:
    """What filing a mapped CDA needs written, or the document already filed."""

    writes: list[Write]
    document: Write | None = None
    existing: Stored | None = None


def binary_write(binary_id: str, data: bytes, document_id: str, now: str) -> Write:
    """The Binary holding the CDA. Its bytes travel raw beside the resource (the store
    keeps them so): no base64 encoding on the way in, nor decoding on the way out."""
    resource = {
        "resourceType": "Binary",
        "contentType": CDA_CONTENT_TYPE,
        # reading the bytes is governed by the DocumentReference's access rules
        "securityContext": {"reference": f"DocumentReference/{document_id}"},
    }
    return replace(
        make_write("create", "Binary", binary_id, resource, current=None, now=now), data=data
    )


def map_for_import(ctx: Context, data: bytes, labels: Sequence[str] = ()) -> CdaMapping:
    """Pure mapping, with the server-assigned Binary and Patient ids (a new Patient's id is
    only used when no Patient holds the INS yet)."""
    return map_cda(
        data,
        security_labels=labels,
        binary_id=new_id(),
        patient_id=new_id(),
        max_bytes=ctx.settings.max_body_bytes,
    )


async def prepare_import(ctx: Context, mapping: CdaMapping, data: bytes) -> PreparedImport:
    doc_ref = mapping.document_reference
    found = await filing.filed(ctx.gate, doc_ref["masterIdentifier"])
    if found is not None:
        return PreparedImport([], existing=found)
    now = ctx.now_iso()
    writes: list[Write] = []
    holder = await filing.patient_holding(ctx.gate, *mapping.ins)
    if holder is not None:
        doc_ref = {**doc_ref, "subject": {"reference": f"Patient/{holder}"}}
    else:
        writes += await open_record(ctx, mapping.patient, now)
    parents = await replacement.replaced_documents(ctx, doc_ref)
    doc_ref = replacement.link_replaced(doc_ref, parents)
    # No fhir.resources validation here: the mapper's output is tested to validate, and
    # model validation would be most of the cost of filing a document.
    doc_id = new_id()
    binary_id = doc_ref["content"][0]["attachment"]["url"].split("/", 1)[1]
    writes.append(binary_write(binary_id, data, doc_id, now))
    body = structured_content.extract(mapping.document)
    document = make_write(
        "create",
        "DocumentReference",
        doc_id,
        structured_content.mark(on_create("DocumentReference", doc_ref, now), body),
        current=None,
        now=now,
    )
    ref = f"DocumentReference/{doc_id}"
    assert document.resource is not None
    writes += [
        document,
        *await ctx.gate.judge("create", "DocumentReference", None, document.resource, ref),
        *structured_content.writes(body, document.resource, now),
    ]
    for parent in parents:
        writes += await replacement.supersede_checked(ctx, parent, now)
    return PreparedImport(writes, document=document)


async def open_record(
    ctx: Context, patient: dict, now: str, transaction: str | None = None
) -> list[Write]:
    """A Patient created on the way (a filing for an INS no record holds yet), with the
    decision that the actor may open the record; the filing then sees it open."""
    write = make_write(
        "create",
        "Patient",
        patient["id"],
        on_create("Patient", patient, now),
        current=None,
        now=now,
    )
    ref = f"Patient/{write.id}"
    return [
        write,
        *await ctx.gate.judge(
            "create", "Patient", None, write.resource, ref, transaction=transaction
        ),
    ]


def same_bytes(stored: Stored, mapping: CdaMapping) -> bool:
    """The filed document's content has the SHA-1 the server computed of these bytes."""
    attachment = ((stored.resource or {}).get("content") or [{}])[0].get("attachment") or {}
    return attachment.get("hash") == mapping.document.sha1_base64


async def import_cda(ctx: Context, data: bytes, labels: Sequence[str] = ()) -> WriteOutcome:
    """File a CDA: 201 with the new DocumentReference, or 200 with the one already filed."""
    mapping = map_for_import(ctx, data, labels)

    async def attempt(last: bool) -> WriteOutcome:
        prepared = await prepare_import(ctx, mapping, data)
        if prepared.existing is not None:
            return await _already_filed(ctx, prepared.existing, mapping)
        try:
            stored = await ctx.gate.commit(prepared.writes)
        except UniqueViolation as exc:
            if exc.key.startswith(DOCUMENT_KEY):  # a concurrent filing of the same document won
                found = await filing.filed(ctx.gate, mapping.document_reference["masterIdentifier"])
                if found is None:
                    # its writes are not all visible yet (MongoDB without transactions
                    # reserves keys first): look again in a moment
                    raise Again() from None
                return await _already_filed(ctx, found, mapping)
            if exc.key.startswith(PATIENT_KEY):  # a concurrent filing created the Patient
                ctx.cache.forget_records()
                raise Again() from None
            raise duplicate_error(exc) from None
        except VersionConflict:  # the replaced document changed meanwhile: look again
            raise Again() from None
        assert prepared.document is not None
        return WriteOutcome(201, _stored(stored, prepared.document))

    return await retry(
        attempt,
        lambda: errors.conflict("The document is being filed concurrently; retry"),
        pause_s=RETRY_PAUSE_S,
    )


async def _already_filed(ctx: Context, found: Stored, mapping: CdaMapping) -> WriteOutcome:
    answer = await filing.refiled(ctx.gate, found, same_bytes(found, mapping))
    return WriteOutcome(200, answer, "Already filed")


def _stored(stored: list[Stored], write: Write) -> Stored:
    return next(s for s in stored if s.rtype == write.rtype and s.id == write.id)


def security_labels(values: Sequence[str]) -> list[str]:
    """Repeated `security-label` query parameters, each possibly comma-separated."""
    return [code.strip() for value in values for code in value.split(",") if code.strip()]
