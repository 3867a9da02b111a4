"""fhirpy, the sync (requests) and async (aiohttp) clients, against a live server: what its
users call, `count()`, `get_or_create()`, `fetch_all()`, answers as they expect. With the
DMP policy on, a count holds only what the caller may see."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.access.conftest import AUTHOR, HOSPITAL, STRANGER, TREATING
from tests.access.test_dmp_scenario import _consent, _document, _patient
from tests.conftest import INS_TEST_SYSTEM, VALID_INS, nir_with_key, patient
from tests.live_app import Live

fhirpy = pytest.importorskip("fhirpy")

NIRS = [VALID_INS] + [nir_with_key(f"18505751234{n:02d}") for n in range(4)]


def _ins(nir: str) -> str:
    return f"{INS_TEST_SYSTEM}|{nir}"


def test_sync_client_counts_gets_or_creates_and_pages(open_server: Live) -> None:
    client = fhirpy.SyncFHIRClient(open_server.base)
    patients = client.resources("Patient")
    assert patients.count() == 0

    by_ins = patients.search(identifier=_ins(VALID_INS))
    first, created = by_ins.get_or_create(client.resource("Patient", **patient()))
    assert created is True
    again, created = by_ins.get_or_create(client.resource("Patient", **patient()))
    assert created is False
    assert again.id == first.id
    assert by_ins.count() == 1

    made = {first.id}
    for nir in NIRS[1:]:
        made.add(client.resource("Patient", **patient(nir=nir)).save().id)
    assert len(patients.limit(2).fetch()) == 2  # a page holds two
    assert {p.id for p in patients.limit(2).fetch_all()} == made  # three pages
    assert patients.count() == len(NIRS)


def test_async_client_counts_gets_or_creates_and_pages(open_server: Live) -> None:
    async def scenario() -> None:
        client = fhirpy.AsyncFHIRClient(open_server.base)
        patients = client.resources("Patient")
        assert await patients.count() == 0
        ids = set()
        for nir in NIRS:
            by_ins = patients.search(identifier=_ins(nir))
            made, created = await by_ins.get_or_create(
                client.resource("Patient", **patient(nir=nir))
            )
            found, again = await by_ins.get_or_create(
                client.resource("Patient", **patient(nir=nir))
            )
            assert (created, again, found.id) == (True, False, made.id)
            ids.add(made.id)
        assert {p.id for p in await patients.limit(2).fetch_all()} == ids
        assert await patients.count() == len(NIRS)

        pid = next(iter(ids))
        docs = client.resources("DocumentReference").search(patient=pid, status="current")
        assert await docs.count() == 0
        filed = set()
        for n in range(3):
            doc = client.resource("DocumentReference", **_document(pid, f"doc {n}"))
            filed.add((await doc.save()).id)
        assert await docs.count() == 3
        assert {d.id for d in await docs.limit(1).fetch_all()} == filed

    asyncio.run(scenario())


def _total(live: Live, query: str, bearer: str) -> tuple[int, list[Any]]:
    r = httpx.get(f"{live.base}/DocumentReference?{query}", headers={"authorization": bearer})
    assert r.status_code == 200, r.text
    bundle = r.json()
    matches = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
    return bundle["total"], matches


def test_counts_hold_only_what_the_caller_sees(dmp_server: Live) -> None:
    live = dmp_server

    def as_(role: str, **claims: Any) -> Any:
        return fhirpy.SyncFHIRClient(live.base, authorization=live.bearer(role, **claims))

    insurer = as_("assurance-maladie")
    record, created = (
        insurer.resources("Patient")
        .search(identifier=_ins(VALID_INS))
        .get_or_create(insurer.resource("Patient", **_patient()))
    )
    assert created is True
    pid = record.id
    author = as_("practitioner", rpps=AUTHOR, organization=HOSPITAL)
    author.resource("DocumentReference", **_document(pid, "Lettre de sortie")).save()
    author.resource("DocumentReference", **_document(pid, "Masqué", "MASQUE_PS")).save()
    patient_client = as_("patient", patient=pid)
    for rpps in (STRANGER, AUTHOR):
        patient_client.resource("Consent", **_consent(pid, "permit", rpps)).save()

    def count(client: Any) -> int:
        return client.resources("DocumentReference").search(patient=pid, status="current").count()

    # the patient, the treating physician and the author see both documents; another doctor
    # the patient authorised does not see the one masked from professionals
    assert count(patient_client) == 2
    assert count(author) == 2
    assert count(as_("practitioner", rpps=TREATING)) == 2
    assert count(as_("practitioner", rpps=STRANGER)) == 1

    stranger = live.bearer("practitioner", rpps=STRANGER)
    for query in ("_summary=count", "_count=0"):
        total, matches = _total(live, f"patient={pid}&status=current&{query}", stranger)
        assert (total, matches) == (1, [])
    # the count agrees with the page the same doctor reads
    total, matches = _total(live, f"patient={pid}&status=current&_total=accurate", stranger)
    assert total == len(matches) == 1
