"""Search benchmark: ITI-67 queries at 10k, 100k and 1M documents.

    python benchmarks/search.py                       # 10k, 100k, 1M (long)
    python benchmarks/search.py --sizes 10000,100000  # quick
    python benchmarks/search.py --workers 2           # two uvicorn processes (SQLite WAL)

For each size the embedded SQLite store is bulk-loaded (through the Store port, 5,000
writes per transaction) up to that many DocumentReferences, ten per patient (so 100,000
patients at 1M), each patient also stored as a Patient with an INS. The server then runs
under uvicorn in a subprocess and `wrk` drives a fixed mix of ITI-67 queries (a Lua script
rotates the URLs) with 1 and with 8 connections. Printed per size: p50/p95/p99 latency and
requests per second, plus two floors measured in the same run: the same queries executed
in-process without HTTP (the database's share), and `GET /health` over HTTP (the
framework's share). Finally the ratio p99(largest) / p99(smallest).

Figures are printed, never asserted: this is not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_tools import ensure_wrk  # noqa: E402

from fhir_server.fhir.resource_types import RESOURCE_TYPES  # noqa: E402
from fhir_server.interactions.versioning import make_write  # noqa: E402
from fhir_server.live_server import LiveServer  # noqa: E402
from fhir_server.operations.reindex import index_signature, signature_key  # noqa: E402
from fhir_server.policy.model import CLASS_SYSTEM as CLASS  # noqa: E402
from fhir_server.search.parse import parse  # noqa: E402
from fhir_server.storage import sqlite_search  # noqa: E402
from fhir_server.storage.sqlite import SqliteStore  # noqa: E402

BATCH = 5_000
DOCS_PER_PATIENT = 10
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"
LOINC = "http://loinc.org"
# (class code, weight, [LOINC types]) - a realistic skew: lab and letters dominate
CATEGORIES: list[tuple[str, int, list[str]]] = [
    ("11", 30, ["11502-2", "34878-9"]),  # lab results
    ("10", 20, ["11490-0", "34112-3", "18842-5"]),  # discharge letters, hospital reports
    ("13", 10, ["18748-4", "52040-3"]),  # imaging
    ("60", 10, ["60591-5"]),  # medical summary (VSM)
    ("14", 8, ["57833-6", "57828-6"]),  # prescriptions
    ("04", 8, ["11488-4", "34133-9"]),  # consultation notes
    ("02", 6, ["34749-2"]),  # anaesthesia
    ("03", 4, ["11505-5"]),  # certificates
    ("05", 2, ["75492-9"]),  # prevention
    ("12", 2, ["11526-1"]),  # pathology
]
WEIGHTED = [c for c in CATEGORIES for _ in range(c[1])]
FACILITIES = ["SA01", "SA05", "SA07", "SA29", "SA52"]
SETTINGS = ["ETABLISSEMENT", "AMBULATOIRE", "MEDECINE_VILLE"]
FORMATS = ["urn:ihe:iti:xds-sd:pdf:2008", "urn:ihe:lab:xd-lab:2008", "urn:asip:ci-sis:vsm:2012"]


RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
TREATING_RPPS = "10000000001"


def nir(n: int) -> str:
    body = f"{1_800_000_000_000 + n:013d}"
    return body + f"{97 - int(body) % 97:02d}"


def patient_resource(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": INS_SYSTEM, "value": nir(n)}],
        "name": [{"family": f"NOM{n}", "given": ["Camille"]}],
        "gender": "female" if n % 2 else "male",
        "birthDate": f"{1940 + n % 70}-0{1 + n % 9}-1{n % 9}",
        # the benchmark reads as this treating physician: the DMP policy and the audit of
        # every read are on the measured path
        "generalPractitioner": [{"identifier": {"system": RPPS_SYSTEM, "value": TREATING_RPPS}}],
    }


def document_resource(i: int, rng: random.Random) -> dict[str, Any]:
    pat = i // DOCS_PER_PATIENT
    cat, _, types = rng.choice(WEIGHTED)
    year = rng.randint(2012, 2025)
    day = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    rpps = f"8100{rng.randint(0, 4999):07d}"
    label = "MASQUE_PS" if rng.random() < 0.03 else "N"
    return {
        "resourceType": "DocumentReference",
        "contained": [
            {
                "resourceType": "Practitioner",
                "id": "a1",
                "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": rpps}],
            }
        ],
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:1.2.250.1.999.{i}"},
        "status": "superseded" if rng.random() < 0.05 else "current",
        "type": {"coding": [{"system": LOINC, "code": rng.choice(types)}]},
        "category": [{"coding": [{"system": CLASS, "code": cat}]}],
        "subject": {"reference": f"Patient/pat-{pat}"},
        "date": f"{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        "author": [{"reference": "#a1"}],
        "securityLabel": [
            {"coding": [{"system": "urn:oid:2.16.840.1.113883.5.25", "code": label}]}
        ],
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": f"Binary/b-{i}",
                    "size": 48213,
                    "hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                    "title": "Compte rendu",
                    "creation": f"{day}T08:00:00Z",
                },
                "format": {
                    "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                    "code": rng.choice(FORMATS),
                },
            }
        ],
        "context": {
            "period": {"start": f"{day}T08:00:00Z", "end": f"{day}T18:00:00Z"},
            "facilityType": {
                "coding": [{"system": "urn:oid:1.2.250.1.71.4.2.4", "code": rng.choice(FACILITIES)}]
            },
            "practiceSetting": {
                "coding": [
                    {"system": "urn:oid:1.2.250.1.213.1.1.4.9", "code": rng.choice(SETTINGS)}
                ]
            },
        },
    }


async def load(path: Path, start: int, stop: int, seed: int = 5) -> float:
    """Add documents [start, stop) and their patients; seconds taken."""
    store = SqliteStore(path, synchronous="OFF")
    await store.open()
    rng = random.Random(seed + start)
    now = "2025-11-01T00:00:00.000000+00:00"
    t0 = time.perf_counter()
    batch = []
    for i in range(start, stop):
        if i % DOCS_PER_PATIENT == 0:
            pat = i // DOCS_PER_PATIENT
            batch.append(
                make_write(
                    "create", "Patient", f"pat-{pat}", patient_resource(pat), current=None, now=now
                )
            )
        batch.append(
            make_write(
                "create",
                "DocumentReference",
                f"doc-{i}",
                document_resource(i, rng),
                current=None,
                now=now,
            )
        )
        if len(batch) >= BATCH:
            await store.commit(batch)
            batch = []
    if batch:
        await store.commit(batch)
    # indexed by this version's code: the server need not reindex at start-up
    for rtype in RESOURCE_TYPES:
        await store.set_meta(signature_key(rtype), index_signature(rtype))
    await store.close()
    conn = sqlite3.connect(path)
    # no ANALYZE: the query plans must be right without statistics, as a fresh server has none
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


def query_mix(patients: int, n: int = 5000, seed: int = 7) -> list[str]:
    """A fixed mix of ITI-67 queries (and the INS look-up) over random patients."""
    rng = random.Random(seed)
    urls = []
    for k in range(n):
        p = rng.randrange(patients)
        cat = rng.choice(WEIGHTED)
        kind = k % 6
        base = f"/fhir/DocumentReference?patient=pat-{p}&status=current"
        if kind == 0:
            urls.append(base)
        elif kind == 1:
            urls.append(f"{base}&category={CLASS}%7C{cat[0]}&_sort=-date")
        elif kind == 2:  # the hot query
            urls.append(f"{base}&category={CLASS}%7C{cat[0]}&date=ge2018-01-01&_sort=-date")
        elif kind == 3:
            urls.append(
                f"/fhir/DocumentReference?patient.identifier={INS_SYSTEM}%7C{nir(p)}&status=current&_sort=-date&_count=20"
            )
        elif kind == 4:
            urls.append(f"{base}&type={LOINC}%7C{rng.choice(cat[2])}&period=ge2016&period=le2024")
        else:
            urls.append(f"/fhir/Patient?identifier={INS_SYSTEM}%7C{nir(p)}")
    return urls


def in_process(path: Path, urls: list[str], n: int = 3000) -> dict[str, float]:
    """The same queries parsed and run on a SQLite connection, without HTTP (µs)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA mmap_size=268435456")
    times = []
    for url in urls[:n]:
        parts = urlsplit(url)
        rtype = parts.path.rsplit("/", 1)[1]
        params = parse_qsl(parts.query)
        t0 = time.perf_counter()
        plan = parse(rtype, params, strict=True, enforce_required=True)
        res = sqlite_search.execute(conn, plan)
        for s in res.entries:
            _ = s.resource
        times.append((time.perf_counter() - t0) * 1e6)
    conn.close()
    q = statistics.quantiles(times, n=100)
    return {"p50_us": q[49], "p95_us": q[94], "p99_us": q[98]}


LUA = r"""
local urls = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do urls[#urls + 1] = line end
  if args[2] then wrk.headers["Authorization"] = "Bearer " .. args[2] end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  i = math.random(#urls)
end
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def mint(data_dir: Path) -> str:
    """A token of the local issuer the server uses (its key lives in the data dir)."""
    from fhir_server.auth.tokens import DevIssuer

    return DevIssuer.load_or_create(data_dir).mint_token(
        "practitioner", "bench-treating-physician", rpps=TREATING_RPPS, ttl=86400
    )


def run_wrk(
    wrk: str, port: int, urls_file: Path, lua: Path, conns: int, seconds: int, token: str = ""
) -> dict[str, float]:
    threads = 1 if conns == 1 else 2
    cmd = [wrk, "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "10s",
           "-s", str(lua), f"http://127.0.0.1:{port}", "--", str(urls_file),
           *([token] if token else [])]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    reqs, dur_us, p50, p95, p99, errors = (int(v) for v in line.split()[1:])
    return {
        "rps": reqs / (dur_us / 1e6),
        "p50_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
        "p99_ms": p99 / 1000,
        "errors": errors,
        "requests": reqs,
    }


def check_answers(port: int, urls: list[str], token: str) -> None:
    """A few URLs fetched once: every query must answer 200 with matches (no silent 400s)."""
    import urllib.request

    hits = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for url in urls[:12]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{url}", headers=headers)
        with urllib.request.urlopen(request) as r:
            body = json.loads(r.read())
            hits += len(body.get("entry", []))
    if hits == 0:
        raise RuntimeError("the query mix matches nothing: the benchmark would be meaningless")


def bench_size(
    args: argparse.Namespace, wrk: str, path: Path, size: int, tmp: Path
) -> dict[str, Any]:
    patients = size // DOCS_PER_PATIENT
    urls = query_mix(patients)
    urls_file = tmp / f"urls-{size}.txt"
    urls_file.write_text("\n".join(urls) + "\n")
    health = tmp / "health.txt"
    health.write_text("/health\n")
    lua = tmp / "rotate.lua"
    lua.write_text(LUA)
    # other processes on the machine skew every figure: record how busy it was
    row: dict[str, Any] = {"size": size, "loadavg_before": os.getloadavg()[0]}
    row["in_process"] = in_process(path, urls)
    server = LiveServer(path.parent, workers=args.workers, auth=args.auth).start()
    token = mint(path.parent) if args.auth == "dev" else ""
    try:
        check_answers(server.port, urls, token)
        run_wrk(wrk, server.port, urls_file, lua, 8, 2, token)  # warm-up: caches, pages
        for conns in (1, 8):
            row[f"c{conns}"] = run_wrk(wrk, server.port, urls_file, lua, conns, args.seconds, token)
        row["health_c8"] = run_wrk(wrk, server.port, health, lua, 8, max(3, args.seconds // 2))
        row["loadavg_after"] = os.getloadavg()[0]
    finally:
        server.stop()
    return row


def report(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'docs':>9} | {'conns':>5} | {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} | {'req/s':>7} | errors"
    )
    for r in rows:
        for c in ("c1", "c8"):
            m = r[c]
            print(
                f"{r['size']:>9} | {c[1:]:>5} | {m['p50_ms']:7.2f} {m['p95_ms']:7.2f} {m['p99_ms']:7.2f} | {m['rps']:7.0f} | {m['errors']}"
            )
    print()
    print("floors measured in the same run:")
    for r in rows:
        ip, h = r["in_process"], r["health_c8"]
        print(
            f"{r['size']:>9}: query in-process (parse + SQL + JSON decode, no HTTP) p50 {ip['p50_us']:.0f} µs "
            f"p99 {ip['p99_us']:.0f} µs; GET /health over HTTP, 8 conns: {h['rps']:.0f} req/s p99 {h['p99_ms']:.2f} ms; "
            f"load average {r['loadavg_before']:.1f} -> {r['loadavg_after']:.1f} (2 cores)"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        for c in ("c1", "c8"):
            ratio = last[c]["p99_ms"] / first[c]["p99_ms"]
            print(
                f"p99 ratio {last['size']:,} / {first['size']:,} docs, {c[1:]} conn(s): {ratio:.2f}"
            )
        ratio = last["in_process"]["p99_us"] / first["in_process"]["p99_us"]
        print(f"p99 ratio in-process {last['size']:,} / {first['size']:,}: {ratio:.2f}")


def measure_existing(args: argparse.Namespace) -> int:
    [size] = [int(s) for s in args.sizes.split(",")]
    path = args.existing / "dmp-fhir.sqlite3"
    conn = sqlite3.connect(path)
    found = conn.execute('SELECT COUNT(*) FROM "DocumentReference"').fetchone()[0]
    conn.close()
    if found != size:
        raise SystemExit(f"{path} holds {found} documents, not {size}")
    tmp = Path(tempfile.mkdtemp(prefix="dmp-search-bench-"))
    try:
        row = bench_size(args, ensure_wrk(), path, size, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(row), flush=True)
    report([row])
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument(
        "--auth",
        choices=["dev", "none"],
        default="dev",
        help="dev: read as the patients' treating physician, policy and audit on (default); "
        "none: trusted mode, no policy (audit still written)",
    )
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--data-dir", type=Path, help="keep the database here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument(
        "--existing",
        type=Path,
        help="measure a store this script already loaded (to the single size given) without reloading",
    )
    args = ap.parse_args(argv)
    if args.existing:
        return measure_existing(args)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="dmp-search-bench-"))
    data_dir = args.data_dir or tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "dmp-fhir.sqlite3"
    if path.exists():
        raise SystemExit(f"{path} exists: the benchmark loads a fresh store")
    rows, loaded = [], 0
    try:
        for size in sizes:
            secs = asyncio.run(load(path, loaded, size))
            print(f"loaded {size - loaded:,} documents (+{(size - loaded) // DOCS_PER_PATIENT:,} patients) in {secs:.0f} s "
                  f"({(size - loaded) / secs:,.0f} docs/s); store {path.stat().st_size / 1e9:.2f} GB", flush=True)  # fmt: skip
            loaded = size
            row = bench_size(args, wrk, path, size, tmp)
            row["load_s"] = secs
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        if not args.data_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
