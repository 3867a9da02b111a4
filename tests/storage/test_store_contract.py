"""The Store port's contract, run against every adapter (see STORE_FACTORIES)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fhir_server.interactions.versioning import make_write
from fhir_server.search.parse import parse_query
from fhir_server.storage.port import IndexTerms, UniqueViolation, VersionConflict, Write

NOW = "2026-02-01T00:00:00.000000+00:00"


def run(store: Any, body: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def w(kind, id, version, *, expected=None, keys=(), rtype="Patient", res=True, tokens=()):
    resource = (
        {"resourceType": rtype, "id": id, "meta": {"versionId": str(version)}} if res else None
    )
    return Write(
        kind,
        rtype,
        id,
        version,
        f"2026-01-01T00:00:0{version}.000000+00:00",
        resource,
        expected_version=expected,
        unique_keys=keys,
        index=IndexTerms(tokens=tokens),
    )


def test_create_then_read_and_vread(store):
    async def body(s):
        [stored] = await s.commit([w("create", "a", 1)])
        assert stored.version == 1
        cur = await s.read("Patient", "a")
        assert cur.resource["id"] == "a" and not cur.deleted
        assert (await s.vread("Patient", "a", 1)).resource["meta"]["versionId"] == "1"
        assert await s.read("Patient", "zz") is None
        assert await s.vread("Patient", "a", 2) is None

    run(store, body)


def test_create_existing_id_conflicts(store):
    async def body(s):
        await s.commit([w("create", "a", 1)])
        with pytest.raises(VersionConflict):
            await s.commit([w("create", "a", 1)])

    run(store, body)


def test_update_checks_expected_version(store):
    async def body(s):
        await s.commit([w("create", "a", 1)])
        await s.commit([w("update", "a", 2, expected=1)])
        with pytest.raises(VersionConflict):
            await s.commit([w("update", "a", 3, expected=1)])
        assert (await s.read("Patient", "a")).version == 2

    run(store, body)


def test_batch_is_all_or_nothing(store):
    async def body(s):
        await s.commit([w("create", "a", 1)])
        with pytest.raises(VersionConflict):
            await s.commit([w("create", "b", 1), w("create", "a", 1)])
        assert await s.read("Patient", "b") is None
        page = await s.history("Patient", None, count=10)
        assert [e.id for e in page.entries] == ["a"]

    run(store, body)


def test_unique_keys_are_enforced_and_released(store):
    async def body(s):
        await s.commit([w("create", "a", 1, keys=("ins|1",))])
        with pytest.raises(UniqueViolation) as exc:
            await s.commit([w("create", "b", 1, keys=("ins|1",))])
        assert (exc.value.rtype, exc.value.id) == ("Patient", "a")
        assert await s.read("Patient", "b") is None
        assert await s.holder_of("ins|1") == ("Patient", "a")
        await s.commit([w("delete", "a", 2, expected=1, res=False)])
        assert await s.holder_of("ins|1") is None
        await s.commit([w("create", "b", 1, keys=("ins|1",))])

    run(store, body)


def test_racing_creates_of_one_key_store_one_and_name_it(store):
    """Ten new resources claiming one unique key (an INS) at once, each in a batch with
    another write: one batch is stored, every other is told who holds the key. Never a
    second holder, never a version conflict on an id that nothing else uses."""

    async def body(s):
        async def create(n: int) -> str | UniqueViolation:
            patient = w("create", f"p{n}", 1, keys=("Patient.ins|x|1",))
            document = w("create", f"d{n}", 1, rtype="DocumentReference")
            try:
                await s.commit([patient, document])
            except UniqueViolation as exc:
                return exc
            return f"p{n}"

        outcomes = await asyncio.gather(*(create(n) for n in range(10)))
        [winner] = [o for o in outcomes if isinstance(o, str)]
        assert all(o.id == winner for o in outcomes if isinstance(o, UniqueViolation))
        patients, _ = await s.scan("Patient")
        documents, _ = await s.scan("DocumentReference")
        assert [p.id for p in patients] == [winner]
        assert [d.id for d in documents] == ["d" + winner[1:]]

    run(store, body)


def test_delete_keeps_history(store):
    async def body(s):
        await s.commit([w("create", "a", 1)])
        await s.commit([w("delete", "a", 2, expected=1, res=False)])
        cur = await s.read("Patient", "a")
        assert cur.deleted and cur.version == 2
        page = await s.history("Patient", "a", count=10)
        assert [(e.version, e.deleted) for e in page.entries] == [(2, True), (1, False)]

    run(store, body)


def test_history_paging(store):
    async def body(s):
        for i in range(5):
            await s.commit([w("create", f"p{i}", 1)])
        first = await s.history("Patient", None, count=2)
        assert [e.id for e in first.entries] == ["p4", "p3"]
        second = await s.history("Patient", None, count=2, cursor=first.next_cursor)
        assert [e.id for e in second.entries] == ["p2", "p1"]
        third = await s.history("Patient", None, count=2, cursor=second.next_cursor)
        assert [e.id for e in third.entries] == ["p0"] and third.next_cursor is None

    run(store, body)


def test_concurrent_updates_lose_nothing(store):
    """Ten writers racing on one resource: each either wins its version or is told."""

    async def body(s):
        await s.commit([w("create", "a", 1)])

        async def bump() -> bool:
            for _ in range(50):
                cur = await s.read("Patient", "a")
                try:
                    await s.commit([w("update", "a", cur.version + 1, expected=cur.version)])
                    return True
                except VersionConflict:
                    await asyncio.sleep(0)
            return False

        results = await asyncio.gather(*(bump() for _ in range(10)))
        assert all(results)
        assert (await s.read("Patient", "a")).version == 11
        page = await s.history("Patient", "a", count=20)
        assert [e.version for e in page.entries] == list(range(11, 0, -1))

    run(store, body)


def test_ping(store):
    assert run(store, lambda s: s.ping()) is True


def _binary(id: str, version: int, data: bytes | None, raw: bool) -> Write:
    import base64

    resource: dict[str, Any] = {
        "resourceType": "Binary",
        "id": id,
        "meta": {"versionId": str(version)},
        "contentType": "application/pdf",
    }
    if data is not None and not raw:
        resource["data"] = base64.b64encode(data).decode()
    kind = "create" if version == 1 else "update"
    return Write(
        kind,
        "Binary",
        id,
        version,
        f"2026-01-01T00:00:0{version}.000000+00:00",
        resource,
        expected_version=None if version == 1 else version - 1,
        data=data if raw else None,
    )


@pytest.mark.parametrize("raw", [False, True], ids=["base64-in-json", "raw-bytes"])
def test_binary_bytes_come_back_through_every_read(store, raw):
    import base64

    from fhir_server.search.parse import parse_query

    first, second = bytes(range(256)) * 400, b"%PDF-1.7 second version"

    async def body(s):
        [made] = await s.commit([_binary("b", 1, first, raw)])
        assert base64.b64decode(made.resource["data"]) == first
        await s.commit([_binary("b", 2, second, raw)])
        current = await s.read("Binary", "b")
        assert base64.b64decode(current.resource["data"]) == second
        assert current.resource["contentType"] == "application/pdf"
        assert base64.b64decode((await s.vread("Binary", "b", 1)).resource["data"]) == first
        page = await s.history("Binary", "b", count=10)
        assert [base64.b64decode(e.resource["data"]) for e in page.entries] == [second, first]
        found = await s.search(parse_query("Binary", [("_id", "b")]))
        assert [base64.b64decode(e.resource["data"]) for e in found.entries] == [second]

    run(store, body)


def test_mongodb_keeps_a_binarys_bytes_once(store):
    # the bytes live raw in the version's history document; the current document and both
    # JSON copies go without them (base64 in both copies would be 2.7x the document)
    from fhir_server.storage.mongo import MongoStore

    if not isinstance(store, MongoStore):
        pytest.skip("MongoDB layout")
    document = bytes(range(256)) * 400

    async def body(s):
        await s.commit([_binary("b", 1, document, raw=True)])
        current = await s.db["Binary"].find_one({"_id": "b"})
        history = await s._hist("Binary").find_one({"id": "b", "version": 1})
        assert b'"data"' not in bytes(current["content"]) and "data" not in current
        assert b'"data"' not in bytes(history["content"]) and bytes(history["data"]) == document

    run(store, body)


def test_a_batch_refused_half_way_leaves_nothing_and_spares_the_batches_beside_it(store):
    """Batches committed at once share a transaction on SQLite (group commit): one refused
    after some of its writes leaves none of them, and the others are stored."""

    async def body(s):
        await s.commit([w("create", "held", 1, keys=("K|held",))])
        outcomes = await asyncio.gather(
            s.commit([w("create", "a", 1, keys=("K|a",))]),
            # its first write goes through, its second is refused: nothing of it stays
            s.commit([w("create", "b", 1, keys=("K|b",)), w("create", "b2", 1, keys=("K|held",))]),
            s.commit([w("create", "c", 1, keys=("K|c",))]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], UniqueViolation) and outcomes[1].key == "K|held"
        assert [o[0].id for o in (outcomes[0], outcomes[2])] == ["a", "c"]
        assert (await s.read("Patient", "a")) is not None
        assert (await s.read("Patient", "c")) is not None
        assert await s.read("Patient", "b") is None and await s.read("Patient", "b2") is None
        assert await s.holder_of("K|b") is None
        assert await s.holder_of("K|held") == ("Patient", "held")
        # and the next batches are applied as usual
        [d] = await s.commit([w("create", "d", 1, keys=("K|b",))])
        assert d.id == "d" and await s.holder_of("K|b") == ("Patient", "d")

    run(store, body)


def _result(id: str, patient: str, code: str, day: str, current: Any = None) -> Write:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "category": [{"coding": [{"system": "S", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": f"2026-01-{day}T08:00:00+01:00",
    }
    kind = "create" if current is None else "update"
    return make_write(kind, "Observation", id, resource, current=current, now=NOW)


def test_a_records_results_by_token_follow_its_writes(store):
    """The token key holds the record: a result moved to another record, or deleted,
    answers there and only there, in every form of a token search."""
    by_code = [("code", "http://loinc.org|3016-3"), ("_sort", "-date")]
    forms = [
        by_code,
        [("code", "3016-3"), ("_sort", "-date")],
        [("code", "3016-3,9999-9"), ("_sort", "-date")],
        [("code", "3016-3"), ("category", "laboratory"), ("status", "final"), ("_sort", "-date")],
    ]

    async def found(s: Any, patient: str, query: list[tuple[str, str]]) -> list[str]:
        page = await s.search(parse_query("Observation", [("patient", patient), *query]))
        return [e.id for e in page.entries]

    async def body(s):
        await s.commit(
            [
                _result("o1", "p1", "3016-3", "05"),
                _result("o2", "p1", "2345-7", "06"),
                _result("o3", "p2", "3016-3", "07"),
                _result("o4", "p1", "3016-3", "08"),
            ]
        )
        for query in forms:
            assert await found(s, "p1", query) == ["o4", "o1"], query
            assert await found(s, "p2", query) == ["o3"], query
            assert await found(s, "p3", query) == [], query
        # o4 filed in the wrong record, moved to p2; o1 deleted
        await s.commit(
            [_result("o4", "p2", "3016-3", "08", current=await s.read("Observation", "o4"))]
        )
        await s.commit(
            [
                make_write(
                    "delete",
                    "Observation",
                    "o1",
                    None,
                    current=await s.read("Observation", "o1"),
                    now=NOW,
                )
            ]
        )
        for query in forms:
            assert await found(s, "p1", query) == [], query
            assert await found(s, "p2", query) == ["o4", "o3"], query
        count = await s.search(
            parse_query(
                "Observation",
                [("patient", "p2"), *by_code, ("_count", "1"), ("_total", "accurate")],
            )
        )
        assert [e.id for e in count.entries] == ["o4"] and count.total == 2

    run(store, body)


@pytest.mark.store_kinds("mongo")
def test_a_mongodb_store_made_before_gains_the_record_token_index_at_start_up(store):
    query = [("patient", "p1"), ("code", "3016-3"), ("_sort", "-date")]

    async def names(s: Any) -> set[str]:
        return set(await s.db["Observation"].index_information())

    async def made_before(s):
        await s.commit([_result("o1", "p1", "3016-3", "05"), _result("o2", "p2", "3016-3", "06")])
        await s.search(parse_query("Observation", query))  # the store is set up on first use
        await s.db["Observation"].drop_index("patient_1_tok_1")
        assert "patient_1_tok_1" not in await names(s)

    async def upgraded(s):
        await s.search(parse_query("Observation", query))
        assert "patient_1_tok_1" in await names(s)
        page = await s.search(parse_query("Observation", query))
        assert [e.id for e in page.entries] == ["o1"]

    run(store, made_before)
    run(type(store)(store.uri, transactions=store.transactions), upgraded)
