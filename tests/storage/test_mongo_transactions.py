"""MongoDB transactions refused at commit because another writer committed meanwhile: the
rerun stores the batch once, and nothing of the refused attempt is ever read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_server.storage import mongo
from fhir_server.storage.mongo import MongoStore
from fhir_server.storage.port import StoreUnavailable
from tests.storage.test_store_contract import run, w


def commit_meanwhile(s: MongoStore, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """The first transaction opened from now on has, just before its commit, another batch
    committed beside it (a patient "other" holding K|other). Returns how many ran."""
    release = s._release_keys
    opened = 0

    async def meanwhile(writes: Any, session: Any) -> None:
        nonlocal opened
        opened += 1
        if opened == 1:
            await s.commit([w("create", "other", 1, keys=("K|other",))])
        await release(writes, session)

    monkeypatch.setattr(s, "_release_keys", meanwhile)
    return lambda: opened


async def only_other_and(s: MongoStore, *ids: str) -> None:
    """What every read answers: "other" and `ids` stored, once, holding their keys."""
    patients, _ = await s.scan("Patient")
    assert sorted(p.id for p in patients) == sorted(["other", *ids])
    for id in ["other", *ids]:
        assert (await s.read("Patient", id)) is not None
        assert await s.holder_of(f"K|{id}") == ("Patient", id)
        assert [e.version for e in (await s.history("Patient", id, count=5)).entries] == [1]


@pytest.mark.store_kinds("mongo-txn")
def test_a_transaction_refused_for_a_concurrent_commit_is_rerun_and_stored(store, monkeypatch):
    async def body(s: MongoStore) -> None:
        opened = commit_meanwhile(s, monkeypatch)
        [stored] = await s.commit([w("create", "a", 1, keys=("K|a",))])
        assert stored.id == "a" and stored.version == 1
        assert opened() >= 2  # "other", then "a" at least once
        await only_other_and(s, "a")

    run(store, body)


@pytest.mark.store_kinds("mongo-txn")
def test_reads_after_a_refused_commit_see_only_what_was_committed(store, monkeypatch):
    """The refused batch is not rerun here (one attempt only): it must be nowhere, for the
    reads that follow on the same client as for any other."""

    async def body(s: MongoStore) -> None:
        monkeypatch.setattr(mongo, "TXN_ATTEMPTS", 1)
        commit_meanwhile(s, monkeypatch)
        try:
            await s.commit([w("create", "a", 1, keys=("K|a",))])
        except StoreUnavailable:
            pass  # refused (mongoeco): a real replica set may accept it, see below
        else:
            await only_other_and(s, "a")
            return
        await only_other_and(s)
        assert await s.read("Patient", "a") is None
        assert await s.holder_of("K|a") is None
        assert await s.vread("Patient", "a", 1) is None
        # and the same batch goes in afterwards, as if never tried
        monkeypatch.undo()
        [stored] = await s.commit([w("create", "a", 1, keys=("K|a",))])
        assert stored.id == "a"
        await only_other_and(s, "a")

    run(store, body)
