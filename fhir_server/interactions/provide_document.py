"""IHE MHD document publication: ITI-65 Provide Document Bundle and ITI-105 simplified
publish, on top of the generic transaction (one atomic commit) through its hook.

What MHD adds to a transaction: exactly one SubmissionSet and at least one
DocumentReference (ITI-65); every attachment.url names a Binary of the Bundle; size and
SHA-1 hash are filled when absent and refused when wrong; a Binary holding a CDA is read
and the DocumentReference's patient, type and masterIdentifier must agree with it; the
subject resolves to the one Patient per INS; a document filed already (same uniqueId) is
answered, not stored again; a replacement supersedes its parent in the same commit.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fhir_server import errors
from fhir_server.access import filing
from fhir_server.cda.mapping import (
    CdaDocument,
    build_document_reference,
    confidentiality_label,
    master_identifier,
    read_cda,
)
from fhir_server.cda.resources import patient as patient_from_cda
from fhir_server.errors import FhirError
from fhir_server.fhir import mhd
from fhir_server.fhir.ins import INS_SYSTEMS
from fhir_server.fhir.uniqueness import (
    DOCUMENT_KEY,
    PATIENT_KEY,
    SUBMISSION_SET_KEY,
    ins_key,
    submission_set_key,
)
from fhir_server.interactions import replacement, transaction
from fhir_server.interactions.context import Context
from fhir_server.interactions.create import duplicate_error
from fhir_server.interactions.import_cda import open_record
from fhir_server.interactions.outcome import WriteOutcome
from fhir_server.interactions.transaction import Entry
from fhir_server.interactions.versioning import new_id
from fhir_server.storage.port import Stored, UniqueViolation, VersionConflict, Write
from fhir_server.terminology import valuesets

Json = dict[str, Any]
# keys a concurrent publication of the same document, patient or submission set can take
# first: the next attempt finds their holder and answers with it
RACY_KEYS = (DOCUMENT_KEY, PATIENT_KEY, SUBMISSION_SET_KEY)
ATTEMPTS = 3
# ITI-105: elements derived from the CDA only together, since they point at each other
CONTAINED_GROUP = ("contained", "author", "authenticator", "custodian")


def is_provide_bundle(entries: list[Entry]) -> bool:
    return any(mhd.is_submission_set(e.resource) for e in entries)


def _contradiction(element: str, given: str, in_cda: str) -> FhirError:
    return errors.unprocessable(
        f"DocumentReference.{element} {given!r} contradicts the CDA document, which has {in_cda!r}",
        f"DocumentReference.{element}",
    )


def _binary_bytes(entry: Entry) -> bytes:
    try:
        return base64.b64decode((entry.resource or {}).get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raise errors.bad_request("Binary.data is not valid base64", "Binary.data") from None


def _check_digest(attachment: Json, data: bytes) -> None:
    """Fill size and SHA-1 hash when absent; refuse them when they do not match the bytes."""
    actual = {"size": len(data), "hash": base64.b64encode(hashlib.sha1(data).digest()).decode()}
    for key, value in actual.items():
        given = attachment.setdefault(key, value)
        if given != value:
            raise errors.unprocessable(
                f"attachment.{key} {given!r} does not match the Binary, whose {key} is {value!r}",
                f"DocumentReference.content.attachment.{key}",
            )


def _cda_of(binary: Json, data: bytes, max_bytes: int) -> CdaDocument | None:
    media = str(binary.get("contentType") or "").split(";")[0].strip().lower()
    if media not in mhd.CDA_MEDIA_TYPES or b"ClinicalDocument" not in data:
        return None
    return read_cda(data, max_bytes=max_bytes)


def _check_type(doc: Json, cda: CdaDocument) -> None:
    code = cda.header.code
    assert code is not None  # read_cda refuses a document without one
    concept = valuesets.type_concept(code.system or "", code.code)
    assert concept is not None  # read_cda refuses a type outside J07
    expected = concept.coding()
    codings = (doc.get("type") or {}).get("coding") or []
    if not codings:
        doc["type"] = {"coding": [expected]}
        return
    if not any(
        c.get("code") == expected["code"]
        and c.get("system", expected["system"]) == expected["system"]
        for c in codings
    ):
        given = ", ".join(f"{c.get('system', '')}|{c.get('code')}" for c in codings)
        raise _contradiction("type", given, f"{expected['system']}|{expected['code']}")


def _comparable_unique_id(unique_id: str) -> str:
    """A UUID root is compared without regard to case (RFC 4122): the CDA may write it in
    upper case, while its FHIR form (urn:uuid:) is lower case."""
    root, caret, extension = unique_id.partition("^")
    return (root.lower() if "-" in root else root) + caret + extension


def _check_master_identifier(doc: Json, cda: CdaDocument) -> None:
    given = doc.get("masterIdentifier")
    if not given:
        assert cda.header.id is not None
        doc["masterIdentifier"] = master_identifier(cda.header.id)
        return
    given_id = mhd.xds_unique_id(given)
    if _comparable_unique_id(given_id) != _comparable_unique_id(cda.unique_id):
        raise _contradiction("masterIdentifier", given_id, cda.unique_id)


def _derive(doc: Json, cda: CdaDocument) -> None:
    """ITI-105: metadata the client left out, taken from the CDA header."""
    record_target = cda.header.record_target
    assert record_target is not None
    derived = build_document_reference(
        cda,
        labels=confidentiality_label(cda.header),
        binary_id="placeholder",
        patient_id=None,
        source_patient=patient_from_cda(record_target, "source-patient"),
    )
    with_contained = not any(k in doc for k in CONTAINED_GROUP)
    for key, value in derived.items():
        if key in CONTAINED_GROUP and not with_contained:
            continue
        if key not in ("content", "context", "subject"):
            doc.setdefault(key, value)
    content = doc["content"][0]
    content.setdefault("format", derived["content"][0]["format"])
    for key, value in derived["content"][0]["attachment"].items():
        if key != "url":
            content["attachment"].setdefault(key, value)
    context = doc.setdefault("context", {})
    for key, value in derived["context"].items():
        if key != "sourcePatientInfo" or with_contained:
            context.setdefault(key, value)


def _ins_of(resource: Json) -> set[tuple[str, str]]:
    return {
        (i["system"], str(i.get("value")))
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and i.get("system") in INS_SYSTEMS
    }


def _as_existing(entry: Entry, rtype: str, id: str, resolved: dict[str, str]) -> None:
    """Turn a create into a read of what the server holds already (answered 200)."""
    entry.method, entry.id = "GET", id
    if entry.full_url:
        resolved[entry.full_url] = f"{rtype}/{id}"


@dataclass
class ProvideDocument:
    """The transaction hook for ITI-65 (with a SubmissionSet) and ITI-105 (derive=True)."""

    max_bytes: int
    require_submission_set: bool = True
    derive: bool = False
    now: str = ""
    new_patients: dict[str, Write] = field(default_factory=dict)
    # audit and notifications of the records these new Patients open
    record_audit: list[Write] = field(default_factory=list)
    parents: dict[int, list[Stored]] = field(default_factory=dict)

    async def before(self, ctx: Context, entries: list[Entry]) -> dict[str, str]:
        self.now = ctx.now_iso()
        by_url = {e.full_url: e for e in entries if e.full_url}
        documents = [e for e in entries if e.rtype == "DocumentReference" and e.method == "POST"]
        self._check_shape(entries, documents)
        resolved: dict[str, str] = {}
        for e in entries:
            if mhd.is_submission_set(e.resource) and e.method == "POST":
                await self._submission_set(ctx, e, resolved)
            elif e.rtype == "Patient" and e.method == "POST":
                await self._known_patient(ctx, e, resolved)
        for e in documents:
            try:
                await self._document(ctx, e, by_url, resolved)
            except FhirError as exc:
                raise transaction.relocate(exc, e.index) from None
        return resolved

    @staticmethod
    def _tie(doc_entry: Entry, binaries: list[Entry]) -> None:
        """The content follows its document: each Binary it holds names it (rewritten to
        the DocumentReference's id with the Bundle's other references)."""
        for binary in binaries:
            if binary.resource is not None and doc_entry.full_url:
                binary.resource["securityContext"] = {"reference": doc_entry.full_url}

    async def after(self, ctx: Context, entries: list[Entry]) -> list[Write]:
        writes = [*self.new_patients.values(), *self.record_audit]
        by_index = {e.index: e for e in entries}
        for index, parents in self.parents.items():
            subject = ((by_index[index].resource or {}).get("subject") or {}).get("reference")
            for parent in parents:
                theirs = ((parent.resource or {}).get("subject") or {}).get("reference")
                if theirs != subject:
                    raise transaction.relocate(
                        errors.unprocessable(
                            f"DocumentReference/{parent.id} belongs to {theirs}, not to "
                            f"{subject}: a replacement keeps the patient",
                            "DocumentReference.relatesTo",
                        ),
                        index,
                    )
                writes += await replacement.supersede_checked(ctx, parent, self.now, "ITI-65")
        return writes

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
                _as_existing(e, "List", holder, resolved)
                return

    async def _document(
        self, ctx: Context, e: Entry, by_url: dict[str, Entry], resolved: dict[str, str]
    ) -> None:
        doc = e.resource or {}
        binaries, cda = self._contents(doc, by_url)
        if cda is not None:
            _check_type(doc, cda)
            _check_master_identifier(doc, cda)
            if self.derive:
                _derive(doc, cda)
        if not (doc.get("masterIdentifier") or {}).get("value"):
            raise errors.unprocessable(
                "DocumentReference.masterIdentifier (the document's uniqueId) is required",
                "DocumentReference.masterIdentifier",
            )
        found = await filing.filed(ctx.gate, doc["masterIdentifier"])
        if found is not None:
            # the hash was checked against the Bundle's bytes (`_check_digest`) or derived
            same = _hash(doc) is not None and _hash(doc) == _hash(found.resource or {})
            await filing.refiled(ctx.gate, found, same if binaries else None)
            await self._already_filed(ctx, e, binaries, found, resolved)
            return
        self._tie(e, binaries)
        await self._subject(ctx, doc, cda, by_url)
        if cda is not None and "relatesTo" not in doc:
            relates = build_relates_to(cda)
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
            _check_digest(attachment, data)
            binaries.append(target)
            if cda is None:
                cda = _cda_of(target.resource or {}, data, self.max_bytes)
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
        _as_existing(e, "DocumentReference", found.id, resolved)
        e.existing = found
        contents = (found.resource or {}).get("content") or []
        for binary, content in zip(binaries, contents, strict=False):
            url = (content.get("attachment") or {}).get("url") or ""
            if url.startswith("Binary/"):
                _as_existing(binary, "Binary", url.split("/", 1)[1], resolved)
                binary.existing = await filing.content_of(ctx.gate, found, binary.id or "")

    async def _subject(
        self,
        ctx: Context,
        doc: Json,
        cda: CdaDocument | None,
        by_url: dict[str, Entry],
    ) -> None:
        subject = doc.get("subject") or {}
        ref = subject.get("reference")
        ins = cda.ins if cda is not None else None
        if ref in by_url:
            self._bundle_patient(by_url[ref], ins)
        elif isinstance(ref, str) and ref.startswith("Patient/"):
            try:  # the filer reads the identity it files for (TD0.2), as the policy allows
                stored = await ctx.gate.read("Patient", ref.split("/", 1)[1])
            except FhirError as exc:
                if exc.status not in (404, 410):
                    raise
                raise errors.unprocessable(
                    f"subject {ref} is not known", "DocumentReference.subject"
                ) from None
            held = _ins_of(stored.resource or {})
            if ins and held and ins not in held:
                raise _contradiction("subject", f"{ref} (INS {sorted(held)[0][1]})", ins[1])
        elif ref:
            raise errors.unprocessable(
                f"subject {ref!r} is neither a Patient of the Bundle nor Patient/id",
                "DocumentReference.subject",
            )
        else:
            doc["subject"] = await self._patient_by_ins(ctx, subject.get("identifier"), cda)

    def _bundle_patient(self, entry: Entry, ins: tuple[str, str] | None) -> None:
        if entry.rtype != "Patient":
            raise errors.unprocessable(
                f"subject {entry.full_url} is a {entry.rtype}, not a Patient",
                "DocumentReference.subject",
            )
        held = _ins_of(entry.resource or {})
        if ins and held and ins not in held:
            raise _contradiction("subject", f"INS {sorted(held)[0][1]}", ins[1])

    async def _known_patient(self, ctx: Context, e: Entry, resolved: dict[str, str]) -> None:
        """One Patient per INS: a Bundle's Patient whose INS we hold is the one we hold."""
        for system, value in sorted(_ins_of(e.resource or {})):
            holder = await filing.patient_holding(ctx.gate, system, value)
            if holder is not None:
                _as_existing(e, "Patient", holder, resolved)
                return

    async def _patient_by_ins(
        self, ctx: Context, identifier: Json | None, cda: CdaDocument | None
    ) -> Json:
        ins = cda.ins if cda is not None else None
        if identifier:
            given = (str(identifier.get("system")), str(identifier.get("value")))
            if ins and given != ins:
                raise _contradiction("subject.identifier", given[1], ins[1])
            ins = given
        if ins is None:
            raise errors.unprocessable(
                "DocumentReference.subject is required (a Patient, or its INS identifier)",
                "DocumentReference.subject",
            )
        key = ins_key(*ins)
        holder = await filing.patient_holding(ctx.gate, *ins)
        if holder is not None:
            return {"reference": f"Patient/{holder}"}
        if key in self.new_patients:
            return {"reference": f"Patient/{self.new_patients[key].id}"}
        if cda is None or cda.header.record_target is None:
            raise errors.unprocessable(
                f"No Patient holds INS {ins[1]}: create it in the Bundle",
                "DocumentReference.subject",
            )
        pid = new_id()
        resource = patient_from_cda(cda.header.record_target, pid)
        patient, *audit = await open_record(ctx, resource, self.now, "ITI-65")
        self.new_patients[key] = patient
        self.record_audit += audit
        return {"reference": f"Patient/{pid}"}


def _hash(doc: Json) -> str | None:
    attachment = ((doc.get("content") or [{}])[0] or {}).get("attachment") or {}
    value = attachment.get("hash")
    return value if isinstance(value, str) else None


def build_relates_to(cda: CdaDocument) -> list[Json]:
    """relatesTo replaces for the CDA's relatedDocument RPLC."""
    return [
        {"code": "replaces", "target": {"identifier": master_identifier(ii)}}
        for rel in cda.header.related_documents
        if rel.type_code == "RPLC"
        for ii in rel.parent_ids
    ]


async def _run(
    ctx: Context, make_entries: Callable[[], list[Entry]], make_hook: Callable[[], ProvideDocument]
) -> tuple[list[Entry], dict[int, Stored]]:
    """Prepare and commit; a race lost on a unique key is run again, and then finds the
    winner's resources and answers with them."""
    for attempt in range(ATTEMPTS):
        last = attempt == ATTEMPTS - 1
        entries = make_entries()
        writes = await transaction.prepare_transaction(ctx, entries, make_hook())
        try:
            return entries, await transaction.commit_entries(ctx, entries, writes)
        except UniqueViolation as exc:
            if last or not exc.key.startswith(RACY_KEYS):
                raise duplicate_error(exc) from None
        except VersionConflict as exc:
            if last:
                raise errors.conflict(f"{exc.rtype}/{exc.id} changed meanwhile; retry") from None
    raise AssertionError("unreachable")


async def provide_bundle(ctx: Context, bundle: Json, base: str) -> Json:
    """ITI-65: the transaction-response Bundle."""
    entries, results = await _run(
        ctx,
        lambda: transaction.parse_bundle(copy.deepcopy(bundle))[1],
        lambda: ProvideDocument(ctx.settings.max_body_bytes),
    )
    return transaction.response_bundle(base, entries, results)


def has_attachment_data(resource: Any) -> bool:
    if not isinstance(resource, dict):
        return False
    # any shape may arrive here (the body is not validated yet): only a list of objects
    # with an attachment object counts, anything else goes on to validation (a 400)
    contents = resource.get("content")
    if not isinstance(contents, list) or not contents or not isinstance(contents[0], dict):
        return False
    attachment = contents[0].get("attachment")
    return isinstance(attachment, dict) and bool(attachment.get("data"))


def _simplified_entries(doc: Json) -> list[Entry]:
    """ITI-105 as a two-entry transaction: attachment.data moves out into a Binary."""
    doc = copy.deepcopy(doc)
    attachment = doc["content"][0]["attachment"]
    binary_url = f"urn:uuid:{new_id()}"
    binary = {
        "resourceType": "Binary",
        "contentType": attachment.get("contentType") or "application/octet-stream",
        "data": attachment.pop("data"),
    }
    attachment["url"] = binary_url
    return [
        Entry(0, "POST", "Binary", None, binary, binary_url, None, None),
        Entry(1, "POST", "DocumentReference", None, doc, f"urn:uuid:{new_id()}", None, None),
    ]


_ENTRY_TEXT = re.compile(r"^entry\[\d+\]: ")
_ENTRY_PATH = re.compile(r"^Bundle\.entry\[\d+\](\.resource)?")


def _unlocate(exc: FhirError) -> FhirError:
    """ITI-105 posts one resource: point its errors at it, not at the internal Bundle."""
    issues = [
        replace(
            i,
            diagnostics=_ENTRY_TEXT.sub("", i.diagnostics),
            expression=tuple(_ENTRY_PATH.sub("DocumentReference", x) for x in i.expression),
        )
        for i in exc.issues
    ]
    return FhirError(exc.status, issues, exc.headers)


async def simplified_publish(ctx: Context, doc: Json) -> WriteOutcome:
    """ITI-105: 201 with the DocumentReference, or 200 with the one filed already."""
    try:
        entries, results = await _run(
            ctx,
            lambda: _simplified_entries(doc),
            lambda: ProvideDocument(
                ctx.settings.max_body_bytes, require_submission_set=False, derive=True
            ),
        )
    except FhirError as exc:
        raise _unlocate(exc) from None
    document = entries[1]
    return WriteOutcome(document.status, results[document.index])
