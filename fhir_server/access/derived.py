"""Structured content follows its document, in the same commit as the document's change.

A DocumentReference whose facts change (security labels masked or unmasked, authors,
class) has its derived resources (`fhir.derived`) restamped with the new facts; a
deleted one has them deleted. The Gate adds these writes to every commit that changes a
document, whichever interaction made the change (PATCH, PUT, transaction, deletion), so
the store's visibility filter never sees a derived resource out of step with its
document.
"""

from __future__ import annotations

from collections.abc import Sequence

from fhir_server.fhir.derived import DERIVED_TYPES, facts_of, restamp
from fhir_server.interactions.versioning import make_write
from fhir_server.search.parse import parse_query
from fhir_server.search.plan import SearchPlan, TermIn
from fhir_server.storage.port import Store, Stored, Write

PAGE = 500


async def derived_of(store: Store, document_id: str) -> list[Stored]:
    """Every live resource derived from a document (the store's `document` index)."""
    found: list[Stored] = []
    term = f"document|DocumentReference/{document_id}"
    for rtype in DERIVED_TYPES:
        plan = SearchPlan(rtype, where=(TermIn("ref", (term,)),), count=PAGE)
        while True:
            result = await store.search(plan)
            found += result.entries
            if result.next_cursor is None:
                break
            plan = parse_query(
                rtype,
                [("document", f"DocumentReference/{document_id}"), ("_cursor", result.next_cursor)],
                default_count=PAGE,
            )
    return found


async def following(store: Store, writes: Sequence[Write]) -> list[Write]:
    """The writes that keep derived resources in step with the documents `writes` change."""
    out: list[Write] = []
    for write in writes:
        if write.rtype != "DocumentReference" or write.kind == "create":
            continue
        facts = facts_of(write.resource) if write.resource is not None else None
        for stored in await derived_of(store, write.id):
            current = stored.resource or {}
            if write.kind == "delete" or facts is None:
                out.append(
                    make_write(
                        "delete",
                        stored.rtype,
                        stored.id,
                        None,
                        current=stored,
                        now=write.last_updated,
                    )
                )
                continue
            updated = restamp(current, facts)
            if updated != current:
                out.append(
                    make_write(
                        "update",
                        stored.rtype,
                        stored.id,
                        updated,
                        current=stored,
                        now=write.last_updated,
                    )
                )
    return out
