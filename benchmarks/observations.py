"""One patient's lab results by code: `Observation?patient=X&code=LOINC|3016-3&_sort=-date`.

    .venv/bin/python benchmarks/observations.py [--results 5000] [--others 1000]
        [--seconds 8] [--auth dev none]

The embedded store is loaded through the Store port (`make_write` + `commit`, as the
filing writes them): one record of `--results` Observations (lab reports of 20 results,
one of them a TSH, 3016-3, each report also stored as its DocumentReference and a
DiagnosticReport), and `--others` other records of 50 results each, so that the TSH
results of other patients outnumber this one's and a plan driven by the code alone would
show. Every derived resource carries its document's facts (`fhir.derived.restamp`), 3 %
of the reports masked (MASQUE_PS) like the search benchmark's documents.

Measured, in one run, with `wrk` (1 and 8 connections, the default page of 50):
- HTTP with `--auth dev`: the patient's treating physician, DMP policy on, a durable
  AuditEvent per search; and with `--auth none` (no policy, the AuditEvent still written);
- floors, measured before each server run: the same page query straight on SQLite (the
  SQL the store runs, without the visibility filter, then with the treating physician's:
  the classes a physician may read), parse + SQL + decoding in process,
  and one durable commit of an AuditEvent-sized row on the same disk (every search,
  `--auth none` too, answers once its AuditEvent is on disk).

Figures are printed, never asserted: this is not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_tools import ensure_wrk  # noqa: E402
from search import LUA, check_answers, mint, patient_resource, run_wrk  # noqa: E402

from fhir_server.fhir.derived import restamp  # noqa: E402
from fhir_server.fhir.resource_types import RESOURCE_TYPES  # noqa: E402
from fhir_server.interactions.versioning import make_write  # noqa: E402
from fhir_server.live_server import LiveServer  # noqa: E402
from fhir_server.operations.reindex import index_signature, signature_key  # noqa: E402
from fhir_server.policy.model import CLASS_SYSTEM  # noqa: E402
from fhir_server.policy.tables import HABILITATIONS  # noqa: E402
from fhir_server.policy.visibility import VisibilityFilter  # noqa: E402
from fhir_server.search.parse import parse  # noqa: E402
from fhir_server.storage import sqlite_search  # noqa: E402
from fhir_server.storage.sqlite import SqliteStore  # noqa: E402

LOINC = "http://loinc.org"
TSH = "3016-3"
# the other results of a report (common chemistry and blood count codes)
OTHER_CODES = [
    "2345-7", "2160-0", "2823-3", "2951-2", "1742-6", "1920-8", "2093-3", "2085-9",
    "2571-8", "718-7", "789-8", "6690-2", "777-3", "4544-3", "785-6", "786-4", "787-2",
    "770-8", "731-0",
]  # fmt: skip
PER_REPORT = 1 + len(OTHER_CODES)
OTHER_RESULTS = 50
BATCH = 5_000
NOW = "2025-11-01T00:00:00.000000+00:00"
LAB_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
        }
    ]
}
CHAPTER = {"coding": [{"system": LOINC, "code": "18719-5", "display": "Chimie"}]}
QUERY = f"patient=pat-0&code={LOINC}%7C{TSH}&_sort=-date"


def document(pat: int, n: int, day: str, rng: random.Random) -> dict[str, Any]:
    """The lab report a set of results comes from, with the facts they carry."""
    label = "MASQUE_PS" if rng.random() < 0.03 else "N"
    return {
        "resourceType": "DocumentReference",
        "id": f"doc-{pat}-{n}",
        "masterIdentifier": {
            "system": "urn:ietf:rfc:3986",
            "value": f"urn:oid:1.2.250.9.{pat}.{n}",
        },
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "11502-2"}]},
        "category": [{"coding": [{"system": CLASS_SYSTEM, "code": "11"}]}],
        "subject": {"reference": f"Patient/pat-{pat}"},
        "date": f"{day}T09:00:00Z",
        "author": [
            {
                "identifier": {
                    "system": "urn:oid:1.2.250.1.71.4.2.1",
                    "value": f"8100{rng.randint(0, 4999):07d}",
                }
            }
        ],
        "securityLabel": [
            {"coding": [{"system": "urn:oid:2.16.840.1.113883.5.25", "code": label}]}
        ],
        "content": [{"attachment": {"contentType": "text/xml", "url": f"Binary/b-{pat}-{n}"}}],
        "extension": [
            {"url": "https://dmp-fhir.invalid/StructureDefinition/filed-at", "valueInstant": NOW}
        ],
    }


def result(pat: int, n: int, k: int, code: str, day: str, rng: random.Random) -> dict[str, Any]:
    value = round(rng.uniform(0.5, 9.5), 2)
    return {
        "resourceType": "Observation",
        "id": f"obs-{pat}-{n}-{k}",
        "status": "final",
        "category": [LAB_CATEGORY, CHAPTER],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": f"{day}T08:{k:02d}:00+01:00",
        "valueQuantity": {"value": value, "unit": "mUI/L", "system": "http://unitsofmeasure.org"},
        "referenceRange": [{"low": {"value": 0.4}, "high": {"value": 4.0}}],
    }


def record(pat: int, results: int, rng: random.Random) -> list[Any]:
    """A Patient with `results` Observations, in reports of PER_REPORT (TSH first)."""
    writes = [
        make_write("create", "Patient", f"pat-{pat}", patient_resource(pat), current=None, now=NOW)
    ]
    codes = [TSH, *OTHER_CODES]
    for n in range((results + PER_REPORT - 1) // PER_REPORT):
        day = f"{rng.randint(2012, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        doc = document(pat, n, day, rng)
        writes.append(
            make_write("create", "DocumentReference", doc["id"], doc, current=None, now=NOW)
        )
        kept = codes[: min(PER_REPORT, results - n * PER_REPORT)]
        members = []
        for k, code in enumerate(kept):
            obs = restamp(result(pat, n, k, code, day, rng), doc)
            members.append({"reference": f"Observation/{obs['id']}"})
            writes.append(
                make_write("create", "Observation", obs["id"], obs, current=None, now=NOW)
            )
        report = restamp(
            {
                "resourceType": "DiagnosticReport",
                "id": f"dr-{pat}-{n}",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "11502-2"}]},
                "result": members,
            },
            doc,
        )
        writes.append(
            make_write("create", "DiagnosticReport", report["id"], report, current=None, now=NOW)
        )
    return writes


async def load(path: Path, results: int, others: int) -> tuple[float, int]:
    """Seconds taken and Observations stored."""
    store = SqliteStore(path, synchronous="OFF")
    await store.open()
    rng = random.Random(3)
    t0 = time.perf_counter()
    batch: list[Any] = []
    stored = 0
    for pat in range(others + 1):
        writes = record(pat, results if pat == 0 else OTHER_RESULTS, rng)
        stored += sum(w.rtype == "Observation" for w in writes)
        batch += writes
        if len(batch) >= BATCH:
            await store.commit(batch)
            batch = []
    if batch:
        await store.commit(batch)
    for rtype in RESOURCE_TYPES:  # indexed by this version's code: no reindex at start-up
        await store.set_meta(signature_key(rtype), index_signature(rtype))
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no ANALYZE: a fresh server has none
    conn.close()
    return time.perf_counter() - t0, stored


def quantiles_us(times: list[float]) -> dict[str, float]:
    q = statistics.quantiles(times, n=100)
    return {"p50_us": q[49], "p99_us": q[98]}


def durable_commit(where: Path, n: int = 200) -> dict[str, float]:
    """One small row committed durably (WAL, synchronous=FULL), as each audited search
    commits its AuditEvent before answering: the disk's share of a search."""
    conn = sqlite3.connect(where / "sync-floor.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS events (body BLOB)")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute("INSERT INTO events VALUES (?)", (b"x" * 2000,))
        times.append((time.perf_counter() - t0) * 1e6)
    conn.close()
    return quantiles_us(times)


def floors(path: Path, n: int = 400) -> dict[str, Any]:
    """The page query straight on SQLite (SQL only), parse + SQL + decoding, and a durable
    commit of an AuditEvent-sized row on the same disk."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA mmap_size=268435456")
    params = [tuple(p.split("=", 1)) for p in QUERY.replace("%7C", "|").split("&")]
    plan = parse("Observation", params, strict=True)  # type: ignore[arg-type]
    sql, args = sqlite_search.compile_plan(plan)
    physician = VisibilityFilter("pat-0", allowed_classes=HABILITATIONS["10"])
    policy_sql, policy_args = sqlite_search.compile_plan(replace(plan, visibility=physician))
    matches = len(conn.execute(sql, args).fetchall()) - 1
    raw, policy, full = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute(sql, args).fetchall()
        raw.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        conn.execute(policy_sql, policy_args).fetchall()
        policy.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        res = sqlite_search.execute(conn, parse("Observation", params, strict=True))  # type: ignore[arg-type]
        for s in res.entries:
            _ = s.resource
        full.append((time.perf_counter() - t0) * 1e6)
    conn.close()
    return {
        "page": matches,
        "sql": quantiles_us(raw),
        "sql_policy": quantiles_us(policy),
        "in_process": quantiles_us(full),
        "sync": durable_commit(path.parent.parent),
    }


def measure(
    args: argparse.Namespace, wrk: str, data_dir: Path, auth: str, tmp: Path
) -> dict[str, Any]:
    urls = tmp / "urls.txt"
    urls.write_text(f"/fhir/Observation?{QUERY}\n")
    lua = tmp / "rotate.lua"
    lua.write_text(LUA)
    server = LiveServer(data_dir, auth=auth).start()
    token = mint(data_dir) if auth == "dev" else ""
    try:
        check_answers(server.port, [f"/fhir/Observation?{QUERY}"], token)
        run_wrk(wrk, server.port, urls, lua, 4, 2, token)  # warm-up: caches, pages
        return {c: run_wrk(wrk, server.port, urls, lua, c, args.seconds, token) for c in (1, 8)}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--results", type=int, default=5000, help="Observations in the record")
    ap.add_argument("--others", type=int, default=1000, help="other records (50 results each)")
    ap.add_argument("--seconds", type=int, default=8, help="wrk duration per run")
    ap.add_argument("--auth", nargs="+", default=["dev", "none"], choices=["dev", "none"])
    ap.add_argument("--repeat", type=int, default=1, help="rounds of the HTTP measures")
    args = ap.parse_args(argv)
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="dmp-obs-bench-"))
    try:
        data_dir = tmp / "data"
        data_dir.mkdir()
        path = data_dir / "dmp-fhir.sqlite3"
        secs, stored = asyncio.run(load(path, args.results, args.others))
        print(f"loaded {stored:,} Observations ({args.results:,} in the measured record) "
              f"in {secs:.0f} s; store {path.stat().st_size / 1e6:.0f} MB", flush=True)  # fmt: skip
        rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for _ in range(max(1, args.repeat)):
            for auth in args.auth:
                floor = floors(path)
                rows.append((auth, measure(args, wrk, data_dir, auth, tmp), floor))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nGET /fhir/Observation?{QUERY} (page of {rows[0][2]['page']} of the record's TSH)")
    print(f"{'auth':>5} | {'conns':>5} | {'p50 ms':>7} {'p99 ms':>7} | {'req/s':>6} | errors "
          "| floors p50 µs: SQL, SQL with the policy's filter, in process, durable commit")  # fmt: skip
    for auth, http, floor in rows:
        for conns, m in http.items():
            sql, full, sync = floor["sql"], floor["in_process"], floor["sync"]
            policy = floor["sql_policy"]
            print(
                f"{auth:>5} | {conns:>5} | {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} | "
                f"{m['rps']:6.0f} | {m['errors']:>6} | {sql['p50_us']:.0f}, "
                f"{policy['p50_us']:.0f}, {full['p50_us']:.0f}, {sync['p50_us']:.0f}"
            )
    p50s = {a: [h[1]["p50_ms"] for x, h, _ in rows if x == a] for a in args.auth}
    for auth, values in p50s.items():
        print(f"p50 with one connection, --auth {auth}: median {statistics.median(values):.2f} ms "
              f"over {len(values)} run(s); target < 2 ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
