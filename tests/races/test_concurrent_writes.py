"""Races through the HTTP API, on every store (the `client` fixture): optimistic locking
with If-Match from many threads, conditional creates inside transaction Bundles, and a
mask (PATCH of securityLabel) racing reads. Outcomes must be exactly-once, history
complete and consecutive, and no read may see a half-written resource."""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import INS_TEST_SYSTEM, nir_with_key, patient
from tests.helpers import auth_headers, document_reference

JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
PATCH = {"content-type": "application/json-patch+json"}
THREADS = 10
ROUNDS = 5
RETRIES = 6
MASK = {
    "coding": [
        {
            "system": "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/"
            "TRE-A07-StatutVisibiliteDocument",
            "code": "MASQUE_PS",
        }
    ]
}


def _h(**extra: str) -> dict[str, str]:
    return {**JSON, **auth_headers(), **extra}


def _patients_holding(client, store, nir: str) -> list[str]:
    """Ids of every live Patient the store holds with this INS, scanned in the store itself."""
    ids: list[str] = []
    after = None
    while True:
        page, after = client.portal.call(
            functools.partial(store.scan, "Patient", after=after, count=500)
        )
        ids += [
            s.id
            for s in page
            if any(
                i.get("system") == INS_TEST_SYSTEM and i.get("value") == nir
                for i in s.resource.get("identifier", [])
            )
        ]
        if after is None:
            return ids


def _history(client, rtype: str, rid: str) -> list[dict]:
    r = client.get(f"/fhir/{rtype}/{rid}/_history?_count=1000", headers=auth_headers())
    assert r.status_code == 200
    return [e["resource"] for e in r.json().get("entry") or [] if "resource" in e]


def test_if_match_updates_one_winner_per_version(client):
    nir = nir_with_key("1790351215177")
    created = client.post("/fhir/Patient", json=patient(nir), headers=_h())
    assert created.status_code == 201
    pid = created.json()["id"]
    winners: dict[int, str] = {}  # version written -> the writer's tag
    for rnd in range(ROUNDS):
        version = int(
            client.get(f"/fhir/Patient/{pid}", headers=auth_headers()).json()["meta"]["versionId"]
        )
        barrier = threading.Barrier(THREADS)

        def write(n: int, version: int = version, rnd: int = rnd, barrier=barrier):
            tag = f"R{rnd}-W{n}"
            body = {**patient(nir, family=tag), "id": pid}
            barrier.wait(timeout=30)
            return tag, client.put(
                f"/fhir/Patient/{pid}", json=body, headers=_h(**{"If-Match": f'W/"{version}"'})
            )

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(write, range(THREADS)))
        statuses = sorted(r.status_code for _, r in results)
        assert statuses == [200] + [412] * (THREADS - 1), statuses
        for tag, r in results:
            if r.status_code == 200:
                assert r.json()["meta"]["versionId"] == str(version + 1)
                winners[version + 1] = tag
            else:
                assert r.json()["issue"][0]["code"] == "conflict"
    history = _history(client, "Patient", pid)
    versions = sorted(int(h["meta"]["versionId"]) for h in history)
    assert versions == list(range(1, ROUNDS + 2)), versions  # consecutive, none missing
    for h in history:  # no lost update: each version holds exactly what its winner wrote
        v = int(h["meta"]["versionId"])
        if v in winners:
            assert h["name"][0]["family"] == winners[v]
    final = client.get(f"/fhir/Patient/{pid}", headers=auth_headers()).json()
    assert final["name"][0]["family"] == winners[ROUNDS + 1]


def test_updates_without_if_match_lose_nothing(client):
    """Without If-Match, concurrent updates either land (200, each its own version) or are
    refused as a retryable 409 once the server's retries are spent; every 200 is in the
    history and the current version is the last one written."""
    nir = nir_with_key("1790351215188")
    pid = client.post("/fhir/Patient", json=patient(nir), headers=_h()).json()["id"]
    barrier = threading.Barrier(THREADS)

    def write(n: int):
        barrier.wait(timeout=30)
        body = {**patient(nir, family=f"W{n}"), "id": pid}
        return f"W{n}", client.put(f"/fhir/Patient/{pid}", json=body, headers=_h())

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(write, range(THREADS)))
    assert {r.status_code for _, r in results} <= {200, 409}
    landed = {int(r.json()["meta"]["versionId"]): tag for tag, r in results if r.status_code == 200}
    assert landed and sorted(landed) == list(range(2, len(landed) + 2))
    history = _history(client, "Patient", pid)
    assert sorted(int(h["meta"]["versionId"]) for h in history) == list(range(1, len(landed) + 2))
    for h in history:
        v = int(h["meta"]["versionId"])
        if v in landed:
            assert h["name"][0]["family"] == landed[v]
    final = client.get(f"/fhir/Patient/{pid}", headers=auth_headers()).json()
    assert final["name"][0]["family"] == landed[max(landed)]


@pytest.mark.mongo_gap(
    "liveness only: mongoeco fails a transaction's commit if anything at all was committed "
    "since it began (one version for the whole engine; MongoDB conflicts per document), so "
    "ten filings at once keep aborting each other and some are still answered 503 or 409 "
    "after six tries (19 of 20 runs). The store held one Patient with the INS after every "
    "run (60 runs): the unique key is never let through",
    lanes=("mongo-txn",),
)
def test_concurrent_conditional_transactions_file_one_patient(client, store):
    """Ten ITI-65-style transactions for the same new patient at once (conditional create
    on the INS + a DocumentReference each). A filing may be told 409 "retry" when it lost
    a race; retried, every filing lands exactly once: one Patient, ten documents, all
    pointing at it, no 5xx."""
    nir = nir_with_key("2850575123456")
    cond = f"identifier={INS_TEST_SYSTEM}|{nir}"
    barrier = threading.Barrier(THREADS)

    def file(n: int):
        doc = document_reference("X", f"77.{n}")
        doc["subject"] = {"reference": "urn:uuid:p"}
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:p",
                    "resource": patient(nir),
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": cond},
                },
                {"resource": doc, "request": {"method": "POST", "url": "DocumentReference"}},
            ],
        }
        barrier.wait(timeout=30)
        answers = []
        for _ in range(RETRIES):
            r = client.post("/fhir", json=bundle, headers=_h())
            answers.append(r.status_code)
            if r.status_code != 409:
                break
            time.sleep(0.05 * len(answers))
        return answers, r

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(file, range(THREADS)))
    # safety, whatever the answers: the store itself holds one Patient with the INS (read
    # past the search index), and every filing that landed points at it
    holders = _patients_holding(client, store, nir)
    assert len(holders) == 1, holders
    [pid] = holders
    landed = {r.json()["entry"][0]["resource"]["id"] for _, r in results if r.status_code == 200}
    assert landed <= {pid}, landed
    # liveness: a filing told 409 lands when retried
    for answers, r in results:
        assert set(answers) <= {200, 409}, answers
        assert r.status_code == 200, (answers, r.text[:300])
    firsts = sorted(r.json()["entry"][0]["response"]["status"] for _, r in results)
    assert firsts.count("201 Created") == 1, firsts
    docs = client.get(
        f"/fhir/DocumentReference?patient={pid}&status=current&_count=100", headers=auth_headers()
    )
    assert len(docs.json()["entry"]) == THREADS
    found = client.get(f"/fhir/Patient?{cond}", headers=auth_headers()).json()
    assert len(found["entry"]) == 1


@pytest.mark.mongo_gap(
    "mongoeco aborts a transaction when another session wrote anything meanwhile (here the "
    "readers' AuditEvents), so the masker's If-Match PATCH is refused 412 and reads 409 "
    "(20 of 20 runs)",
    lanes=("mongo-txn",),
)
def test_mask_and_reads_at_once(client):
    """A document masked and unmasked repeatedly while readers read it: every read is a
    whole version (odd versions unmasked, even versions masked, ETag = meta.versionId)."""
    pid = client.post(
        "/fhir/Patient", json=patient(nir_with_key("1790351215199")), headers=_h()
    ).json()["id"]
    r = client.post("/fhir/DocumentReference", json=document_reference(pid, "88.1"), headers=_h())
    assert r.status_code == 201
    did = r.json()["id"]
    flips = 20
    done = threading.Event()
    seen: list[tuple[int, int, str]] = []
    problems: list[str] = []

    def masker() -> None:
        try:
            for n in range(flips):
                version = n + 1
                ops = (
                    [{"op": "add", "path": "/securityLabel/-", "value": MASK}]
                    if n % 2 == 0
                    else [{"op": "remove", "path": "/securityLabel/1"}]
                )
                r = client.patch(
                    f"/fhir/DocumentReference/{did}",
                    json=ops,
                    headers={**PATCH, **auth_headers(), "If-Match": f'W/"{version}"'},
                )
                if r.status_code != 200:
                    problems.append(f"patch {n}: {r.status_code} {r.text[:200]}")
                    return
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            for url in (
                f"/fhir/DocumentReference/{did}",
                f"/fhir/DocumentReference?patient={pid}&_id={did}&status=current",
            ):
                r = client.get(url, headers=auth_headers())
                if r.status_code != 200:
                    problems.append(f"read {url}: {r.status_code}")
                    continue
                body = r.json()
                doc = (
                    body
                    if body["resourceType"] == "DocumentReference"
                    else body["entry"][0]["resource"]
                )
                version = int(doc["meta"]["versionId"])
                if "etag" in r.headers and r.headers["etag"] != f'W/"{version}"':
                    problems.append(f"etag {r.headers['etag']} for version {version}")
                labels = [s["coding"][0]["code"] for s in doc["securityLabel"]]
                seen.append((version, len(labels), labels[-1]))

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    masker()
    for t in readers:
        t.join(timeout=60)
    assert not problems, problems[:5]
    assert seen
    for version, count, last in seen:
        masked = version % 2 == 0
        assert (count, last) == ((2, "MASQUE_PS") if masked else (1, "N")), (version, count, last)
    history = _history(client, "DocumentReference", did)
    assert sorted(int(h["meta"]["versionId"]) for h in history) == list(range(1, flips + 2))
