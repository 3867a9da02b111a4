"""MongoDB going away: 503s (never 500s), fast; service back without restarting the app;
a write that failed leaves nothing visible."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.errors import AutoReconnect

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.storage.mongo import MongoStore
from fhir_server.storage.port import IndexTerms, StoreUnavailable, Write
from tests import mongo_lane
from tests.conftest import FHIR_JSON, nir_with_key, patient

# generous bound: server selection gives up after 2 s; the point is "not 30 s, not hanging"
FAST_503_S = 5.0
RECOVERY_S = 20.0


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[mongo_lane.MongoecoServer]:
    """A mongoeco server of this test's own, file-backed so data outlives a crash."""
    python = mongo_lane.mongoeco_python()
    if python is None:
        pytest.skip("needs a mongoeco environment to kill and restart (.venv-mongo)")
    server = mongo_lane.MongoecoServer(python, sqlite_path=tmp_path / "mongoeco.sqlite3")
    server.start()
    yield server
    server.stop()


def db_uri(server: mongo_lane.MongoecoServer) -> str:
    return f"mongodb://127.0.0.1:{server.port}/failures?directConnection=true"


def _post(client: TestClient, nir13: str) -> Any:
    return client.post("/fhir/Patient", json=patient(nir=nir_with_key(nir13)), headers=FHIR_JSON)


def _assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "transient"
    assert response.headers["retry-after"]


def test_outage_gives_fast_503_and_service_comes_back(own_server, tmp_path):
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir")
    store = MongoStore(db_uri(own_server))
    with TestClient(create_app(settings, store)) as client:
        first = _post(client, "1750175123400")
        assert first.status_code == 201
        pid = first.json()["id"]

        own_server.kill()
        # each probe waits out server selection (2 s): a read and a write are enough
        for call in (
            lambda: client.get(f"/fhir/Patient/{pid}"),
            lambda: _post(client, "1750175123401"),
        ):
            started = time.monotonic()
            _assert_503(call())
            assert time.monotonic() - started < FAST_503_S
        assert client.get("/health").status_code == 503

        own_server.start()  # same port, same data file; the app is not restarted
        deadline = time.monotonic() + RECOVERY_S
        while (got := client.get(f"/fhir/Patient/{pid}")).status_code == 503:
            assert time.monotonic() < deadline, "service did not come back"
            time.sleep(0.2)
        assert got.status_code == 200
        # the create refused during the outage left nothing behind
        found = client.get("/fhir/Patient").json()
        assert [e["resource"]["id"] for e in found["entry"]] == [pid]
        assert _post(client, "1750175123401").status_code == 201


def test_start_while_server_is_down_then_recover(own_server, tmp_path):
    """The app starts even if MongoDB is down; set-up (indexes) runs once it is back."""
    own_server.kill()
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir")
    with TestClient(create_app(settings, MongoStore(db_uri(own_server)))) as client:
        _assert_503(client.get("/fhir/Patient/x"))
        own_server.start()
        deadline = time.monotonic() + RECOVERY_S
        while (r := _post(client, "1750175123402")).status_code == 503:
            assert time.monotonic() < deadline, "service did not come back"
            time.sleep(0.2)
        assert r.status_code == 201


def _write(kind: str, id: str, version: int, expected: int | None, key: str) -> Write:
    resource = {"resourceType": "Patient", "id": id, "meta": {"versionId": str(version)}}
    return Write(
        kind,  # type: ignore[arg-type]
        "Patient",
        id,
        version,
        f"2026-01-01T00:00:0{version}.000000+00:00",
        resource,
        expected_version=expected,
        unique_keys=(key,),
        index=IndexTerms(tokens=(("identifier", key),)),
    )


@pytest.mark.store_kinds("mongo", "mongo-txn")
def test_write_cut_midway_is_not_half_visible(store, monkeypatch):
    """The connection drops after the history row and the unique key are written but before
    the current document: nothing of the write may remain (compensation, or the aborted
    transaction), and the previous version stays current with its key."""

    async def body(s: MongoStore) -> None:
        await s.commit([_write("create", "a", 1, None, "ins|1")])

        async def drop(*args: Any, **kwargs: Any) -> None:
            raise AutoReconnect("connection dropped (injected)")

        monkeypatch.setattr(s, "_write_current", drop)
        with pytest.raises(StoreUnavailable):
            await s.commit([_write("update", "a", 2, 1, "ins|2")])
        with pytest.raises(StoreUnavailable):
            await s.commit([_write("create", "b", 1, None, "ins|3")])
        monkeypatch.undo()

        cur = await s.read("Patient", "a")
        assert cur is not None and cur.version == 1
        assert await s.vread("Patient", "a", 2) is None
        assert [e.version for e in (await s.history("Patient", "a", count=5)).entries] == [1]
        assert await s.read("Patient", "b") is None
        assert await s.vread("Patient", "b", 1) is None
        assert await s.holder_of("ins|1") == ("Patient", "a")
        assert await s.holder_of("ins|2") is None
        assert await s.holder_of("ins|3") is None

    async def main() -> None:
        await store.open()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())
