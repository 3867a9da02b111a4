"""IHE MHD document publication: ITI-65 Provide Document Bundle (and, through it, ITI-105
simplified publish: `simplified_publish.py`), on top of the generic transaction (one atomic commit) through its hook.

What MHD adds to a transaction: exactly one SubmissionSet and at least one
DocumentReference (ITI-65); every attachment.url names a Binary of the Bundle; size and
SHA-1 hash are filled when absent and refused when wrong; a Binary holding a CDA is read
and the DocumentReference's patient, type and masterIdentifier must agree with it; the
subject resolves to the one Patient per INS; a document filed already (same uniqueId) is
answered, not stored again; a replacement supersedes its parent in the same commit; a
CDA's structured content (`structured_content`) is written with its document.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhir_server import errors
from fhir_server.access import filing
from fhir_server.cda.mapping import (
    CdaDocument,
    relates_to,
)
from fhir_server.cda.publication import (
    attachment_hash,
    cda_of,
    check_digest,
    check_master_identifier,
    check_type,
    derive_metadata,
)
from fhir_server.errors import FhirError
from fhir_server.fhir import mhd
from fhir_server.fhir.transaction_bundle import (
    Entry,
    as_existing,
    parse_bundle,
    relocate,
    response_bundle,
)
from fhir_server.fhir.uniqueness import (
    DOCUMENT_KEY,
    PATIENT_KEY,
    SUBMISSION_SET_KEY,
    submission_set_key,
)
from fhir_server.interactions import replacement, structured_content, transaction
from fhir_server.interactions.context import Context
from fhir_server.interactions.create import duplicate_error
from fhir_server.interactions.publication_subjects import Subjects
from fhir_server.interactions.retry import Again, retry
from fhir_server.storage.port import Stored, UniqueViolation, VersionConflict, Write

Json = dict[str, Any]
# keys a concurrent publication of the same document, patient or submission set can take
# first: the next attempt finds their holder and answers with it
RACY_KEYS = (DOCUMENT_KEY, PATIENT_KEY, SUBMISSION_SET_KEY)
ATTEMPTS = 3


def is_provide_bundle(entries: list[Entry]) -> bool:
    return any(mhd.is_submission_set(e.resource) for e in entries)


def _binary_bytes(entry: Entry) -> bytes:
    try:
        return base64.b64decode((entry.resource or {}).get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raise errors.bad_request("Binary.data is not valid base64", "Binary.data") from None


@dataclass
class ProvideDocument:
    """The transaction hook for ITI-65 (with a SubmissionSet) and ITI-105 (derive=True)."""

    max_bytes: int
    require_submission_set: bool = True
    derive: bool = False
    now: str = ""
    subjects: Subjects = field(default_factory=Subjects)
    parents: dict[int, list[Stored]] = field(default_factory=dict)
    # entry index -> the CDA of a document filed by this Bundle (its structured content)
    cdas: dict[int, CdaDocument] = field(default_factory=dict)

    async def before(self, ctx: Context, entries: list[Entry]) -> dict[str, str]:
        self.now = self.subjects.now = ctx.now_iso()
        by_url = {e.full_url: e for e in entries if e.full_url}
        documents = [e for e in entries if e.rtype == "DocumentReference" and e.method == "POST"]
        self._check_shape(entries, documents)
        resolved: dict[str, str] = {}
        for e in entries:
            if mhd.is_submission_set(e.resource) and e.method == "POST":
                await self._submission_set(ctx, e, resolved)
            elif e.rtype == "Patient" and e.method == "POST":
                await self.subjects.known_patient(ctx, e, resolved)
        for e in documents:
            try:
                await self._document(ctx, e, by_url, resolved)
            except FhirError as exc:
                raise relocate(exc, e.index) from None
        return resolved

    @staticmethod
    def _tie(doc_entry: Entry, binaries: list[Entry]) -> None:
        """The content follows its document: each Binary it holds names it (rewritten to
        the DocumentReference's id with the Bundle's other references)."""
        for binary in binaries:
            if binary.resource is not None and doc_entry.full_url:
                binary.resource["securityContext"] = {"reference": doc_entry.full_url}

    async def after(self, ctx: Context, entries: list[Entry]) -> list[Write]:
        writes = self.subjects.writes()
        by_index = {e.index: e for e in entries}
        # TD2.1: the Bundle may supersede the replaced document itself, by a PATCH entry
        patched = {
            e.id: e
            for e in entries
            if e.method == "PATCH" and e.rtype == "DocumentReference" and e.write is not None
        }
        for index, parents in self.parents.items():
            subject = ((by_index[index].resource or {}).get("subject") or {}).get("reference")
            for parent in parents:
                theirs = ((parent.resource or {}).get("subject") or {}).get("reference")
                if theirs != subject:
                    raise relocate(
                        errors.unprocessable(
                            f"DocumentReference/{parent.id} belongs to {theirs}, not to "
                            f"{subject}: a replacement keeps the patient",
                            "DocumentReference.relatesTo",
                        ),
                        index,
                    )
                entry = patched.get(parent.id)
                if entry is not None and entry.write is not None:
                    if (entry.write.resource or {}).get("status") != "superseded":
                        raise relocate(
                            errors.unprocessable(
                                f"DocumentReference/{parent.id} is replaced in this Bundle: "
                                "its PATCH must set it superseded",
                                "Parameters",
                            ),
                            entry.index,
                        )
                    continue
                writes += await replacement.supersede_checked(ctx, parent, self.now, "ITI-65")
        return writes + self._structured_content(by_index)

    def _structured_content(self, by_index: dict[int, Entry]) -> list[Write]:
        """Each new document's structured content, and its account on the document."""
        out: list[Write] = []
        for index, cda in self.cdas.items():
            write = by_index[index].write
            if write is None or write.resource is None:
                continue
            body = structured_content.extract(cda)
            # the document's Write is built already: its account joins it in place (no
            # index term reads that extension)
            marked = structured_content.mark(write.resource, body)
            write.resource.clear()
            write.resource.update(marked)
            out += structured_content.writes(body, write.resource, self.now)
        return out

    # -- checks --------------------------------------------------------------------------

    def _check_shape(self, entries: list[Entry], documents: list[Entry]) -> None:
        sets = [e for e in entries if mhd.is_submission_set(e.resource)]
        if self.require_submission_set and len(sets) != 1:
            raise errors.unprocessable(
                f"An ITI-65 Provide Document Bundle holds exactly one SubmissionSet List, "
                f"not {len(sets)}",
                "Bundle.entry",
            )
        if not documents:
            raise errors.unprocessable(
                "An ITI-65 Provide Document Bundle holds at least one DocumentReference to create",
                "Bundle.entry",
            )

    async def _submission_set(self, ctx: Context, e: Entry, resolved: dict[str, str]) -> None:
        for ident in mhd.submission_set_unique_ids(e.resource or {}):
            holder = await filing.holder(ctx.gate, submission_set_key(ident))
            if holder is not None:
                as_existing(e, "List", holder, resolved)
                return

    async def _document(
        self, ctx: Context, e: Entry, by_url: dict[str, Entry], resolved: dict[str, str]
    ) -> None:
        doc = e.resource or {}
        binaries, cda = self._contents(doc, by_url)
        if cda is not None:
            check_type(doc, cda)
            check_master_identifier(doc, cda)
            if self.derive:
                derive_metadata(doc, cda)
        if not (doc.get("masterIdentifier") or {}).get("value"):
            raise errors.unprocessable(
                "DocumentReference.masterIdentifier (the document's uniqueId) is required",
                "DocumentReference.masterIdentifier",
            )
        found = await filing.filed(ctx.gate, doc["masterIdentifier"])
        if found is not None:
            # the hash was checked against the Bundle's bytes (`check_digest`) or derived
            same = attachment_hash(doc) is not None and attachment_hash(doc) == attachment_hash(
                found.resource or {}
            )
            await filing.refiled(ctx.gate, found, same if binaries else None)
            await self._already_filed(ctx, e, binaries, found, resolved)
            return
        self._tie(e, binaries)
        if cda is not None:
            self.cdas[e.index] = cda
        await self.subjects.resolve(ctx, doc, cda, by_url)
        if cda is not None and "relatesTo" not in doc:
            relates = relates_to(cda.header)
            if relates:
                doc["relatesTo"] = relates
        parents = await replacement.replaced_documents(ctx, {**doc, "subject": None})
        if parents:
            e.resource = replacement.link_replaced(doc, parents)
            self.parents[e.index] = parents

    def _contents(
        self, doc: Json, by_url: dict[str, Entry]
    ) -> tuple[list[Entry], CdaDocument | None]:
        """The Binary entries the attachments point at, and the CDA among them if any."""
        binaries: list[Entry] = []
        cda = None
        for i, content in enumerate(doc.get("content") or []):
            attachment = (content or {}).get("attachment") or {}
            target = by_url.get(attachment.get("url") or "")
            if target is None or target.rtype != "Binary" or target.method != "POST":
                raise errors.unprocessable(
                    f"content[{i}].attachment.url {attachment.get('url')!r} must be the fullUrl "
                    "of a Binary created in the same Bundle",
                    f"DocumentReference.content[{i}].attachment.url",
                )
            data = _binary_bytes(target)
            check_digest(attachment, data)
            binaries.append(target)
            if cda is None:
                cda = cda_of(target.resource or {}, data, self.max_bytes)
        return binaries, cda

    async def _already_filed(
        self,
        ctx: Context,
        e: Entry,
        binaries: list[Entry],
        found: Stored,
        resolved: dict[str, str],
    ) -> None:
        """The filed document (disclosed by `filing.refiled`) and its content answer the
        entries of the document sent again."""
        as_existing(e, "DocumentReference", found.id, resolved)
        e.existing = found
        contents = (found.resource or {}).get("content") or []
        for binary, content in zip(binaries, contents, strict=False):
            url = (content.get("attachment") or {}).get("url") or ""
            if url.startswith("Binary/"):
                as_existing(binary, "Binary", url.split("/", 1)[1], resolved)
                binary.existing = await filing.content_of(ctx.gate, found, binary.id or "")


async def run_publication(
    ctx: Context, make_entries: Callable[[], list[Entry]], make_hook: Callable[[], ProvideDocument]
) -> tuple[list[Entry], dict[int, Stored]]:
    """Prepare and commit; a race lost on a unique key is run again, and then finds the
    winner's resources and answers with them."""

    async def attempt(last: bool) -> tuple[list[Entry], dict[int, Stored]]:
        entries = make_entries()
        writes = await transaction.prepare_transaction(ctx, entries, make_hook())
        try:
            return entries, await transaction.commit_entries(ctx, entries, writes)
        except UniqueViolation as exc:
            if last or not exc.key.startswith(RACY_KEYS):
                raise duplicate_error(exc) from None
            raise Again() from None
        except VersionConflict as exc:
            if last:
                raise errors.conflict(f"{exc.rtype}/{exc.id} changed meanwhile; retry") from None
            raise Again() from None

    return await retry(
        attempt, lambda: errors.conflict("The Bundle could not be filed; retry"), attempts=ATTEMPTS
    )


async def provide_bundle(ctx: Context, bundle: Json, base: str) -> Json:
    """ITI-65: the transaction-response Bundle."""
    entries, results = await run_publication(
        ctx,
        lambda: parse_bundle(copy.deepcopy(bundle), base)[1],
        lambda: ProvideDocument(ctx.settings.max_body_bytes),
    )
    return response_bundle(base, entries, results)
