"""`dmp-fhir reindex`: documents written before a search parameter existed are found by it
once reindexed, on every store; nothing else about them changes. The server does it by
itself at start-up when the store was indexed by another version."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.cli import main
from fhir_server.config import Settings
from fhir_server.fhir.resource_types import RESOURCE_TYPES
from fhir_server.interactions.versioning import make_write
from fhir_server.operations.reindex import (
    index_signature,
    reindex,
    reindex_if_stale,
    signature_key,
)
from fhir_server.search.parse import parse_query
from fhir_server.storage.port import Write
from fhir_server.storage.sqlite import SqliteStore

NOW = "2026-01-01T00:00:00.000000+00:00"


def _document(id: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
        "content": [{"attachment": {"contentType": "text/xml", "url": f"Binary/{id}"}}],
    }


def _as_written_before_is_archived(id: str) -> Write:
    """A filing by a version that did not know the PDSm `isArchived` parameter."""
    write = make_write("create", "DocumentReference", id, _document(id), current=None, now=NOW)
    tokens = tuple(t for t in write.index.tokens if t[0] != "isArchived")
    assert len(tokens) < len(write.index.tokens)
    return replace(write, index=replace(write.index, tokens=tokens))


def _not_archived(store: Any) -> Any:
    query = [("patient", "p1"), ("isArchived", "false")]
    return store.search(parse_query("DocumentReference", query))


def test_reindex_finds_documents_written_before_a_parameter(store):
    async def body() -> None:
        await store.open()
        try:
            await store.commit([_as_written_before_is_archived(f"d{i}") for i in range(3)])
            deleted = make_write("delete", "DocumentReference", "d2", None, current=None, now=NOW)
            await store.commit([replace(deleted, version=2, expected_version=1)])
            assert (await _not_archived(store)).entries == []
            before = await store.read("DocumentReference", "d0")

            report = await reindex(store, ["DocumentReference"])

            assert report.reindexed == {"DocumentReference": 2}  # the deleted one is not
            found = await _not_archived(store)
            assert sorted(e.id for e in found.entries) == ["d0", "d1"]
            after = await store.read("DocumentReference", "d0")
            assert (after.version, after.content) == (before.version, before.content)
            page = await store.history("DocumentReference", "d0", count=10)
            assert len(page.entries) == 1  # no new version
        finally:
            await store.close()

    asyncio.run(body())


def test_reindex_leaves_a_newer_write_alone(store):
    async def body() -> None:
        await store.open()
        try:
            first = make_write(
                "create", "DocumentReference", "d", _document("d"), current=None, now=NOW
            )
            await store.commit([first])
            # terms computed from version 1, while version 2 was being written
            stale = [("d", 1, replace(first.index, tokens=()))]
            second = replace(first, kind="update", version=2, expected_version=1)
            await store.commit([second])
            assert await store.reindex("DocumentReference", stale) == 0
            assert [e.id for e in (await _not_archived(store)).entries] == ["d"]
        finally:
            await store.close()

    asyncio.run(body())


def test_reindex_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def file_old_document() -> None:
        store = SqliteStore(tmp_path / "dmp-fhir.sqlite3")
        await store.open()
        try:
            await store.commit([_as_written_before_is_archived("d0")])
        finally:
            await store.close()

    asyncio.run(file_old_document())
    assert main(["reindex", "--data-dir", str(tmp_path), "--type", "DocumentReference"]) == 0
    out = capsys.readouterr().out
    assert "DocumentReference: 1 reindexed" in out
    assert main(["reindex", "--data-dir", str(tmp_path), "--type", "Encounter"]) == 2
    assert "unknown resource type 'Encounter'" in capsys.readouterr().err


def _same_data(store: Any) -> Any:
    """Another store object on the same data (a SqliteStore is opened once)."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    return type(store)(store.uri)


def on_same_data(store: Any, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work` on another store object over the same data, opened then closed (as a
    process of another version, or the next start, would)."""

    async def run() -> Any:
        other = _same_data(store)
        await other.open()
        try:
            return await work(other)
        finally:
            await other.close()

    return asyncio.run(run())


def test_the_server_reindexes_a_store_indexed_by_another_version(
    store: Any, settings: Settings
) -> None:
    async def file_old_document() -> None:
        old = _same_data(store)
        await old.open()
        try:
            await old.commit([_as_written_before_is_archived("d0")])
            # a store from before signatures
            assert await old.meta(signature_key("DocumentReference")) is None
        finally:
            await old.close()

    asyncio.run(file_old_document())
    with TestClient(create_app(settings, store)) as client:
        query = {"patient": "p1", "status": "current", "isArchived": "false"}
        bundle = client.get("/fhir/DocumentReference", params=query).json()
        assert [e["resource"]["id"] for e in bundle.get("entry", [])] == ["d0"]

    async def after_start() -> tuple[str | None, Any]:
        again = _same_data(store)
        await again.open()
        try:
            key = signature_key("DocumentReference")
            return await again.meta(key), await reindex_if_stale(again)
        finally:
            await again.close()

    signature, again = asyncio.run(after_start())
    assert signature == index_signature("DocumentReference")
    assert again is None  # indexed by this version: nothing to do at the next start


def test_the_signature_follows_the_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_server.operations import reindex as module
    from fhir_server.search.params import SEARCH_PARAMS

    before = {t: index_signature(t) for t in ("DocumentReference", "AuditEvent")}
    archived = SEARCH_PARAMS["DocumentReference"]["isArchived"]
    monkeypatch.setitem(
        SEARCH_PARAMS["DocumentReference"], "isArchived", replace(archived, absent=None)
    )
    assert index_signature("DocumentReference") != before["DocumentReference"]
    assert index_signature("AuditEvent") == before["AuditEvent"]  # only that type reindexes
    monkeypatch.undo()
    assert index_signature("DocumentReference") == before["DocumentReference"]
    monkeypatch.setattr(module, "INDEX_FORMAT", module.INDEX_FORMAT + 1)
    assert all(index_signature(t) != sig for t, sig in before.items())


def test_only_stale_types_are_reindexed_at_start(store: Any) -> None:
    async def body() -> None:
        await store.open()
        try:
            await store.commit([_as_written_before_is_archived("d0")])
            for rtype in RESOURCE_TYPES:
                if rtype != "DocumentReference":
                    await store.set_meta(signature_key(rtype), index_signature(rtype))
            report = await reindex_if_stale(store)
            assert report is not None and report.reindexed == {"DocumentReference": 1}
            assert await reindex_if_stale(store) is None
        finally:
            await store.close()

    asyncio.run(body())
