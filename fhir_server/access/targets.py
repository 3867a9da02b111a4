"""What governs access to one stored resource: its last live version, the record it
belongs to, and the document whose rules apply (a Binary's, or the one an AuditEvent or
notice names). Every version of a resource, deleted or not, is governed by its last live
version; a Binary by the document it is the content of, and a resource derived from a
document (its structured content) by that document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.fhir.compartment import binary_document, local_id, patient_of
from fhir_server.fhir.derived import DERIVED_TYPES, source_document
from fhir_server.policy import DocumentFacts
from fhir_server.policy.facts import document_facts
from fhir_server.storage.port import Store, Stored

# types whose entries name a document of the record (`entity.what`, `about`)
TRAIL_TYPES = ("AuditEvent", "Communication")


@dataclass(frozen=True)
class Target:
    rtype: str
    id: str
    stored: Stored | None  # the current version (maybe a deletion), None if never held
    governing: Mapping[str, Any] | None  # the last live version, None if there is none
    patient_id: str | None  # the record it belongs to
    document: DocumentFacts | None  # the document whose rules govern it

    @property
    def exists(self) -> bool:
        return self.governing is not None

    @property
    def ref(self) -> str:
        return f"{self.rtype}/{self.id}"


async def last_live(store: Store, stored: Stored | None) -> Mapping[str, Any] | None:
    """The resource of the last version that was not a deletion."""
    version = stored
    while version is not None and version.deleted:
        if version.version <= 1:
            return None
        version = await store.vread(version.rtype, version.id, version.version - 1)
    return version.resource if version is not None else None


async def _document(store: Store, doc_id: str | None) -> Mapping[str, Any] | None:
    if doc_id is None:
        return None
    return await last_live(store, await store.read("DocumentReference", doc_id))


async def binary_owner(store: Store, stored: Stored) -> str | None:
    """The document a Binary is the content of: the first `securityContext` any version
    set (it never changes afterwards, and an earlier version's wins over a later one)."""
    if stored.version == 1:
        return binary_document(stored.resource)
    for number in range(1, stored.version + 1):
        version = await store.vread(stored.rtype, stored.id, number)
        if version is not None and (doc := binary_document(version.resource)) is not None:
            return doc
    return None


def named_documents(rtype: str, resource: Mapping[str, Any]) -> list[str]:
    """The DocumentReference / Binary references a trail entry names ("Type/id")."""
    if rtype == "AuditEvent":
        refs = [(e or {}).get("what") for e in resource.get("entity") or []]
    elif rtype == "Communication":
        refs = list(resource.get("about") or [])
    else:
        return []
    out = []
    for ref in refs:
        for kind in ("DocumentReference", "Binary"):
            if (rid := local_id(ref, kind)) is not None:
                out.append(f"{kind}/{rid}")
    return out


async def _governing_document(
    store: Store, rtype: str, resource: Mapping[str, Any], stored: Stored
) -> Mapping[str, Any] | None:
    if rtype == "DocumentReference":
        return resource
    if rtype == "Binary":
        return await _document(store, await binary_owner(store, stored))
    if rtype in DERIVED_TYPES:
        return await _document(store, source_document(resource))
    for ref in named_documents(rtype, resource):
        kind, rid = ref.split("/", 1)
        if kind == "DocumentReference":
            return await _document(store, rid)
        binary = await store.read("Binary", rid)
        if binary is not None:
            return await _document(store, await binary_owner(store, binary))
    return None


async def load_target(store: Store, rtype: str, id: str) -> Target:
    stored = await store.read(rtype, id)
    governing = await last_live(store, stored)
    if stored is None or governing is None:
        return Target(rtype, id, stored, None, None, None)
    document = await _governing_document(store, rtype, governing, stored)
    if document is None and rtype in DERIVED_TYPES:
        # derived content without its document is governed by nothing: it is no one's
        return Target(rtype, id, stored, None, None, None)
    if rtype == "Binary":
        patient = patient_of("DocumentReference", document) if document else None
    else:
        patient = patient_of(rtype, governing)
    facts = document_facts(document) if document is not None else None
    return Target(rtype, id, stored, governing, patient, facts)
