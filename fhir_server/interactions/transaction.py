"""Bundles posted to [base]: `transaction` (all or nothing: every write goes to the store
in one atomic commit) and `batch` (each entry on its own).

Local references (`urn:uuid:` fullUrls) are resolved to the ids the server assigns,
everywhere they appear (references, attachment URLs)."""

from __future__ import annotations

import copy
from typing import Any, Protocol

from fhir_server import errors
from fhir_server.access import lookups
from fhir_server.errors import FhirError, Issue, operation_outcome
from fhir_server.fhir.transaction_bundle import (
    ORDER,
    Entry,
    relocate,
    response_bundle,
    rewrite,
)
from fhir_server.interactions import (
    conditional_references,
    create,
    delete,
    patch,
    read,
    update,
)
from fhir_server.interactions.context import Context
from fhir_server.interactions.retry import Again, retry
from fhir_server.interactions.versioning import new_id
from fhir_server.storage.port import Stored, UniqueViolation, VersionConflict, Write


def _assign_ids(entries: list[Entry]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for e in entries:
        if e.method == "POST":
            # a conditional create that matched points its local reference at the match
            e.id = e.existing.id if e.existing is not None else new_id()
        if e.full_url and e.id and e.method in ("POST", "PUT"):
            mapping[e.full_url] = f"{e.rtype}/{e.id}"
    return mapping


class ConditionRace(FhirError):
    """A concurrent writer created what a conditional create of this transaction looked for
    between the match and the commit. `transaction` runs again from the start; a caller
    that does not retry answers this 409."""

    def __init__(self) -> None:
        super().__init__(
            409, [Issue("conflict", "A concurrent filing created the same resource; retry")]
        )


async def _match_conditions(ctx: Context, entries: list[Entry]) -> None:
    """Resolve conditional creates before ids are assigned, so that references to a
    matched entry's urn:uuid point at the resource that exists (not at an id never
    created: a DocumentReference filed for a known patient was left dangling)."""
    for e in entries:
        if e.method == "POST" and e.if_none_exist:
            try:
                found = await lookups.find(
                    ctx.gate, e.rtype, e.if_none_exist, purpose="If-None-Exist"
                )
                # answering with it discloses it: the actor must be able to read it
                e.existing = await ctx.gate.read(found.rtype, found.id) if found else None
            except FhirError as exc:
                raise relocate(exc, e.index) from None
            if e.existing is not None:
                e.status = 200


async def _prepare(ctx: Context, e: Entry) -> None:
    if e.method == "POST":
        if e.existing is not None:
            return
        prepared = await create.prepare_create(
            ctx, e.rtype, e.resource, if_none_exist=e.if_none_exist, id=e.id
        )
        if isinstance(prepared, Stored):
            raise ConditionRace()
        (e.write, *e.extra), e.status = prepared, 201
    elif e.method == "PUT":
        assert e.id is not None
        (e.write, *e.extra), creates = await update.prepare_update(
            ctx, e.rtype, e.id, e.resource, if_match=e.if_match
        )
        e.status = 201 if creates else 200
    elif e.method == "PATCH":
        if e.id is None:  # conditional: the one document the actor may see
            e.id = await patch.resolve_conditional(ctx, e.rtype, e.query)
        e.write, *e.extra = await patch.prepare_patch(
            ctx, e.rtype, e.id, e.patch, if_match=e.if_match
        )
        e.status = 200
    elif e.method == "DELETE":
        if e.id is None:
            e.id = await patch.resolve_conditional(ctx, e.rtype, e.query)
        deletion = await delete.prepare_delete(ctx, e.rtype, e.id)
        if deletion is not None:
            e.write, *e.extra = deletion
        e.status = 204
    else:
        assert e.id is not None
        if e.existing is None and e.rtype == "Bundle":
            e.existing = await _fhir_document(ctx, e.id)
        elif e.existing is None:
            e.existing = await read.read(ctx, e.rtype, e.id)


async def _fhir_document(ctx: Context, id: str) -> Stored:
    """A `GET Bundle/{id}` entry: the FHIR document the Binary `id` holds, read as that
    Binary is, answered under the Bundle's id and the Binary's version."""
    stored, bundle = await read.fhir_document(ctx, id)
    return Stored("Bundle", id, stored.version, stored.last_updated, False, None, _resource=bundle)


async def resolve_conditional_references(ctx: Context, entries: list[Entry]) -> None:
    """`Patient?identifier=...` anywhere a reference is: rewritten to the one resource the
    actor may see that it names, before anything else looks at the entries."""
    for e in entries:
        if e.resource is None or not conditional_references.refs.find(e.resource):
            continue
        try:
            resolved = await conditional_references.resolve_all(ctx, [e.resource])
        except FhirError as exc:
            raise relocate(exc, e.index) from None
        e.resource = conditional_references.refs.rewrite(e.resource, resolved)


class TransactionHook(Protocol):
    """Extra rules of a specialised transaction (MHD ITI-65), kept out of the generic code."""

    async def before(self, ctx: Context, entries: list[Entry]) -> dict[str, str]:
        """Check and amend entries before ids are assigned; return fullUrl -> Type/id of
        entries resolved to resources the server already holds (turned into reads)."""
        ...

    async def after(self, ctx: Context, entries: list[Entry]) -> list[Write]:
        """Extra writes for the same commit, once every entry has its Write."""
        ...


async def prepare_transaction(
    ctx: Context, entries: list[Entry], hook: TransactionHook | None = None
) -> list[Write]:
    """Every Write of the transaction, in entry order, then the hook's extra writes."""
    await resolve_conditional_references(ctx, entries)
    resolved = await hook.before(ctx, entries) if hook else {}
    await _match_conditions(ctx, entries)
    mapping = {**_assign_ids(entries), **resolved}
    for e in entries:
        if e.patch is not None:
            e.patch = rewrite(e.patch, mapping)
        if e.resource is not None:
            e.resource = rewrite(e.resource, mapping)
            if e.method == "POST":
                e.resource.pop("id", None)
    # a Patient created here opens its record first: the entries filed into it are then
    # checked against an open record, not an absent one
    for e in sorted(entries, key=lambda x: (ORDER[x.method], x.rtype != "Patient")):
        try:
            await _prepare(ctx, e)
        except FhirError as exc:
            raise relocate(exc, e.index) from None
    writes = [w for e in entries if e.write is not None for w in (e.write, *e.extra)]
    if hook:
        writes.extend(await hook.after(ctx, entries))
    return writes


async def commit_entries(
    ctx: Context, entries: list[Entry], writes: list[Write]
) -> dict[int, Stored]:
    """One atomic commit; entry index -> what it wrote or read. Store errors propagate."""
    stored = await ctx.gate.commit(writes) if writes else []
    by_write = {id(w): s for w, s in zip(writes, stored, strict=True)}
    results = {}
    for e in entries:
        found = by_write.get(id(e.write)) if e.write is not None else e.existing
        if found is not None:
            results[e.index] = found
    return results


RACE_RETRIES = 3


async def transaction(ctx: Context, entries: list[Entry], base: str) -> dict[str, Any]:
    async def attempt(last: bool) -> dict[str, Any]:
        try:
            return await _run_once(ctx, copy.deepcopy(entries), base, last)
        except ConditionRace:
            if last:
                raise
            raise Again() from None

    return await retry(attempt, ConditionRace, attempts=RACE_RETRIES)


async def _run_once(ctx: Context, entries: list[Entry], base: str, last: bool) -> dict[str, Any]:
    writes = await prepare_transaction(ctx, entries)
    try:
        results = await commit_entries(ctx, entries, writes)
    except UniqueViolation as exc:
        if not last and any(e.if_none_exist and e.write is not None for e in entries):
            raise ConditionRace() from None  # a racing create may have won: look again
        raise create.duplicate_error(exc) from None
    except VersionConflict as exc:
        raise errors.conflict(
            f"{exc.rtype}/{exc.id} changed during the transaction; retry"
        ) from None
    return response_bundle(base, entries, results)


async def batch(ctx: Context, entries: list[Entry], base: str) -> dict[str, Any]:
    out = []
    for e in entries:
        try:
            result = await transaction(ctx, [e], base)
            out.append(result["entry"][0])
        except FhirError as exc:
            out.append(
                {
                    "response": {
                        "status": str(exc.status),
                        "outcome": operation_outcome(exc.issues),
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}
