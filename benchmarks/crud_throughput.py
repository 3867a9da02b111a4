"""Throughput of one `dmp-fhir serve` process over HTTP: Patient create, then read.

    .venv/bin/python benchmarks/crud_throughput.py --store sqlite
    .venv/bin/python benchmarks/crud_throughput.py --store mongoeco   # needs .venv-mongo
    .venv/bin/python benchmarks/crud_throughput.py --store mongo --mongodb-uri URI

Starts the server as a subprocess (uvicorn, one worker, authentication off: the REST core
alone), waits for /health, then sends N creates and N reads with C requests in flight, and
prints requests/second and latency percentiles; JSON results go to benchmarks/out/. Keep N small on mongoeco: the emulator
slows down past a few thousand documents per collection. mongoeco is an emulator, not a
mongod: its figures say nothing about MongoDB's own speed, only that the adapter works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fhir_server.live_server import LiveServer  # noqa: E402
from tests import mongo_lane  # noqa: E402

HEADERS = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


def patient(i: int) -> dict:
    first13 = f"1750175{i:06d}"  # a distinct, well-keyed test NIR per patient
    nir = first13 + f"{97 - int(first13) % 97:02d}"
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": nir}],
        "name": [{"family": f"BENCH-{i}", "given": ["Dominique"]}],
        "gender": "female",
        "birthDate": "1979-03-28",
    }


async def timed(calls: list, concurrency: int) -> tuple[float, list[float]]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(call) -> None:
        async with sem:
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return time.perf_counter() - started, latencies


def summary(name: str, n: int, elapsed: float, lat: list[float]) -> dict:
    q = statistics.quantiles(lat, n=100)
    return {
        "op": name,
        "n": n,
        "per_s": round(n / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
    }


async def drive(base: str, n: int, concurrency: int) -> list[dict]:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        ids: list[str] = []

        def create(i: int):
            async def call() -> None:
                r = await client.post("/Patient", json=patient(i), headers=HEADERS)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])

            return call

        def read(pid: str):
            async def call() -> None:
                r = await client.get(f"/Patient/{pid}", headers=HEADERS)
                assert r.status_code == 200, r.text

            return call

        await timed([create(n + i) for i in range(20)], concurrency)  # warm-up
        c_elapsed, c_lat = await timed([create(i) for i in range(n)], concurrency)
        r_elapsed, r_lat = await timed([read(p) for p in ids[:n]], concurrency)
    return [summary("create", n, c_elapsed, c_lat), summary("read", n, r_elapsed, r_lat)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "mongoeco", "mongo"], default="sqlite")
    parser.add_argument("--mongodb-uri")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    args = parser.parse_args()
    emulator = None
    if args.store == "mongoeco":
        python = mongo_lane.mongoeco_python()
        if python is None:
            parser.error("no .venv-mongo: run `bash scripts/test.sh` once")
        emulator = mongo_lane.MongoecoServer(python)
        uri = emulator.start()
        args.mongodb_uri = uri.replace("/?", "/bench?")
    with tempfile.TemporaryDirectory() as tmp:
        # the REST core alone, authentication off: the DMP policy's cost is measured by
        # ingest.py and search.py (with tokens)
        server = LiveServer(Path(tmp), mongodb_uri=args.mongodb_uri)
        try:
            with server:
                results = asyncio.run(drive(server.fhir_base, args.n, args.concurrency))
        finally:
            if emulator is not None:
                emulator.stop()
    report = {
        "store": args.store,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    out = REPO / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"crud_{args.store}.json").write_text(json.dumps(report, indent=2))
    for r in results:
        print(
            f"{args.store:9} {r['op']:6} n={r['n']:5} {r['per_s']:8.1f}/s "
            f"p50 {r['p50_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
