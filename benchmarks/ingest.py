"""CDA ingestion throughput, each figure beside a floor measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--seconds 10] [--connections 8 32] [--workers 1 2]
        [--repeat 1] [--no-peer] [--mapping-only]

Document: the ANS CR-BIO TSH example (../shared/fixtures), its ClinicalDocument/id varied
so that every document is new.

- floor: what any filing must do at least: safe lxml parse + SHA-1 + raw SQLite inserts of
  as many rows as the server's filing of this document writes (counted in a store that
  filed it: resources, history rows, index rows, keys, audit; one row holds the bytes),
  committed per document with the server's durability (WAL, synchronous=FULL); run again
  before and after each measure, which is compared with the mean of those two runs (the
  machine's speed drifts by tens of per cent within minutes)
- mapping: `map_cda` in process (parse, header, validation, PDSm mapping) and the body's
  structured content (`extract_body`: DiagnosticReport and Observations), no storage
- http: `POST /fhir/DocumentReference/$import-cda` into the embedded store, the server
  (`dmp-fhir serve --workers N`, N = 1 and 2 by default) in a subprocess on a free loopback
  port with a new temporary data dir for each measure, driven by `wrk` with a Lua script
  that varies the document id per request, with 8 and with 32 concurrent senders (a DMP
  host hears from many establishments at once; concurrent filings share commits); a
  laboratory's token, so the DMP policy and audit are measured; with `--repeat N`, every HTTP measure is made
  N times (in rounds over the configurations), each beside its own floor, and the table
  shows the median and the range: one run's ratio moves by +-0.1 on this machine
- peer: python-fhir-converter (PyPI) converting the same CDA, in its own virtualenv
  (benchmarks/.venv-peer, created on first run: it pins lxml 5.3), each of its runs (one
  per `--repeat`) between two runs of our mapping, their ratio read pair by pair;
  `--mapping-only` measures only this (no floor, no server)

Writes nothing outside temporary directories, except the peer's virtualenv.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from lxml import etree
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_tools import ensure_wrk  # noqa: E402

from fhir_server.auth.tokens import DevIssuer  # noqa: E402
from fhir_server.cda.extraction import extract_body  # noqa: E402
from fhir_server.cda.mapping import map_cda  # noqa: E402
from fhir_server.live_server import LiveServer  # noqa: E402

T = TypeVar("T")
NAME = "BIO-CR-BIO_2024.01_TSH_1.xml"
DOC_ID = b'<id root="1.2.250.1.213.1.1.1.55.2024.9.1'  # ClinicalDocument/id, first <id>
PEER_VENV = Path(__file__).resolve().parent / ".venv-peer"
# logs and pipes get the whole table rather than 80 wrapped columns
console = Console(width=None if sys.stdout.isatty() else 150)


def find_example() -> Path:
    for base in (REPO.parent, REPO.parent.parent):
        path = base / "shared/fixtures/cda/ansforge-examples" / NAME
        if path.is_file():
            return path
    sys.exit(f"{NAME} not found beside the checkout (../shared/fixtures/cda/ansforge-examples)")


def variant(data: bytes, n: int | str) -> bytes:
    """The same document under another id (an OID one arc longer)."""
    return data.replace(DOC_ID, DOC_ID + f".{n}".encode(), 1)


def rate(fn: Callable[[bytes], object], docs: list[bytes]) -> float:
    start = time.perf_counter()
    for doc in docs:
        fn(doc)
    return len(docs) / (time.perf_counter() - start)


# -- floor ----------------------------------------------------------------------------------


# what each of the floor's other rows holds besides its key: about an index row's bytes
ROW_VALUE = b"x" * 48


def floor_rate(docs: list[bytes], tmp: Path, rows: int = 1) -> float:
    """Documents per second of the floor writing `rows` rows per document: the bytes in
    one, the others small keyed rows, in one transaction (executemany)."""
    conn = sqlite3.connect(tmp / "floor.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE docs (sha1 TEXT PRIMARY KEY, body BLOB)")
    conn.execute("CREATE TABLE terms (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

    def file(doc: bytes) -> None:
        etree.fromstring(doc, parser)
        digest = hashlib.sha1(doc).hexdigest()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO docs VALUES (?, ?)", (digest, doc))
        conn.executemany(
            "INSERT INTO terms VALUES (?, ?)",
            [(f"{digest}|{i}", ROW_VALUE) for i in range(rows - 1)],
        )
        conn.execute("COMMIT")

    try:
        return rate(file, docs)
    finally:
        conn.close()


def settle() -> None:
    """Write back what earlier runs left dirty: a run must not pay for the previous one's
    disk writes (the floor measured just after a server run came out 20-30 % slower)."""
    os.sync()
    time.sleep(0.5)


class Floor:
    """The floor, sampled again before and after each measure, and each measure compared
    with the mean of its two samples: this machine's speed drifts by tens of per cent
    within minutes, so a floor taken once at the start compared figures taken under
    different conditions. A measure and its floor are both single runs, and the floor
    runs alone (no server up)."""

    def __init__(self, docs: list[bytes], tmp: Path, rows: int) -> None:
        self.docs, self.tmp, self.rows = docs, tmp, rows
        self.samples: list[float] = []

    def sample(self) -> float:
        where = self.tmp / f"floor-{len(self.samples)}"
        where.mkdir()
        settle()
        self.samples.append(floor_rate(self.docs, where, self.rows))
        return self.samples[-1]

    def around(self, measure: Callable[[], T]) -> tuple[T, float]:
        before = self.sample()
        settle()
        out = measure()
        return out, (before + self.sample()) / 2


def mapping_rate(docs: list[bytes]) -> float:
    return rate(lambda d: extract_body(map_cda(d, binary_id="b", patient_id="p").document), docs)


# -- HTTP -----------------------------------------------------------------------------------

LUA = r"""
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local body = f:read("*a")
f:close()
local _, stop = string.find(body, os.getenv("BENCH_MARKER"), 1, true)
local prefix, suffix = string.sub(body, 1, stop), string.sub(body, stop + 1)
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local counter = 0
local tag = os.getenv("BENCH_TAG")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/hl7-cda+xml"
wrk.headers["Prefer"] = "return=minimal"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. tag .. "." .. tid .. "." .. counter .. suffix)
end
"""


@contextmanager
def server(tmp: Path, workers: int = 1) -> Iterator[str]:
    with LiveServer(tmp / "server", workers=workers, auth="dev") as live:
        yield live.fhir_base


def wrk(
    base: str, body: Path, seconds: int, connections: int, tag: str, token: str
) -> tuple[float, int]:
    """Requests per second and the number of answers that were not 2xx."""
    script = body.with_suffix(".lua")
    script.write_text(LUA)
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_MARKER": DOC_ID.decode(), "BENCH_TAG": tag}
    env["BENCH_TOKEN"] = token
    out = subprocess.run(
        [
            ensure_wrk(),
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            base + "/DocumentReference/$import-cda",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def http_rate(
    data: bytes, tmp: Path, seconds: int, connections: int, workers: int
) -> tuple[float, int]:
    """(docs/s, non-2xx answers) of one server of `workers` processes on a new store, with
    `connections` concurrent senders. The server is stopped on return: a server left up,
    even idle, slowed the floor measured beside it by 20-30 %."""
    body = tmp / "body.xml"
    body.write_bytes(data)
    with server(tmp, workers) as base:
        # a laboratory system files: the DMP policy and the audit are on the measured path
        token = DevIssuer.load_or_create(tmp / "server").mint_token(
            "system", "bench-lab", organization="1990000018", ttl=86400
        )
        wrk(base, body, 2, connections, ".0", token)  # warm-up: imports, caches, first pages
        return wrk(base, body, seconds, connections, ".1", token)


def table_rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def rows_per_filing(data: bytes, tmp: Path) -> dict[str, int]:
    """The rows one filing of this document adds to the store, by table: filed twice (as
    two documents) through HTTP as the benchmark files it, the second counted (its
    patient's record exists, as for most filings)."""
    import httpx

    where = tmp / "count"
    with LiveServer(where / "server", auth="dev") as live:
        token = DevIssuer.load_or_create(where / "server").mint_token(
            "system", "bench-lab", organization="1990000018", ttl=3600
        )
        headers = {"Content-Type": "application/hl7-cda+xml", "Authorization": f"Bearer {token}"}
        url = live.fhir_base + "/DocumentReference/$import-cda"
        httpx.post(url, content=variant(data, "count.1"), headers=headers).raise_for_status()
        before = table_rows(where / "server" / "dmp-fhir.sqlite3")
        httpx.post(url, content=variant(data, "count.2"), headers=headers).raise_for_status()
        after = table_rows(where / "server" / "dmp-fhir.sqlite3")
    return {n: after[n] - before.get(n, 0) for n in after if after[n] != before.get(n, 0)}


# -- peer -----------------------------------------------------------------------------------

PEER_SCRIPT = r"""
import json, sys, time
from fhir_converter.renderers import CcdaRenderer
renderer = CcdaRenderer()
data = open(sys.argv[1], encoding="utf-8").read()
out = json.loads(renderer.render_fhir_string("CCD", data))  # warm-up, and what it makes
kinds = sorted({e["resource"]["resourceType"] for e in out.get("entry", [])})
patient = next((e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "Patient"), {})
ins = any("1.2.250.1.213.1.4.10" in json.dumps(i) for i in patient.get("identifier", []))
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]):
    renderer.render_fhir_string("CCD", data)
    n += 1
print(json.dumps({"rate": n / (time.perf_counter() - start), "kinds": kinds, "ins": ins}))
"""


def peer_rate(example: Path, seconds: float) -> tuple[float | None, str]:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        console.print("creating benchmarks/.venv-peer with python-fhir-converter ...")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "python-fhir-converter"],
            check=True,
            capture_output=True,
        )
    run = subprocess.run(
        [str(python), "-c", PEER_SCRIPT, str(example), str(seconds)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"cannot convert the French CDA: {last}"
    import json

    result = json.loads(run.stdout.strip().splitlines()[-1])
    note = (
        f"generic C-CDA CCD template: makes {', '.join(result['kinds'])}; "
        f"INS {'kept' if result['ins'] else 'not recognised'}; no PDSm metadata "
        "(category, format, masking), no storage"
    )
    return result["rate"], note


def peer_pairs(
    docs: list[bytes], example: Path, pairs: int
) -> tuple[list[tuple[float, float]], str]:
    """(our mapping, peer) in documents/s, `pairs` times, and the peer's note. Each peer run
    sits between two of ours: the ratio is read within one minute, as the machine's speed
    drifts."""
    out: list[tuple[float, float]] = []
    note = "skipped (--no-peer)"
    for _ in range(max(0, pairs)):
        before = mapping_rate(docs)
        peer_once, note = peer_rate(example, 5)
        if peer_once is None:
            break
        out.append(((before + mapping_rate(docs)) / 2, peer_once))
    return out, note


# -- report ---------------------------------------------------------------------------------


def spread(values: list[float], fmt: str) -> str:
    """One value as itself; several as their median and range."""
    if len(values) == 1:
        return fmt.format(values[0])
    low, high = min(values), max(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(low)}-{fmt.format(high)})"


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--seconds", type=int, default=10, help="wrk duration")
    args.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[8, 32],
        help="concurrent senders (wrk connections) to measure (default: 8 and 32)",
    )
    args.add_argument("--docs", type=int, default=400, help="documents per in-process run")
    args.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="server process counts to measure (default: 1 and 2)",
    )
    args.add_argument(
        "--repeat", type=int, default=1, help="times each HTTP measure is made (default: 1)"
    )
    args.add_argument("--no-peer", action="store_true")
    args.add_argument(
        "--mapping-only",
        action="store_true",
        help="only our mapping against the peer, `--repeat` pairs (no floor, no server)",
    )
    opts = args.parse_args()

    example = find_example()
    data = example.read_bytes()
    docs = [variant(data, i) for i in range(opts.docs)]
    mapping_rate(docs[:5])  # warm-up (tables loaded once per process), as the peer gets one
    if opts.mapping_only:
        pairs, note = peer_pairs(docs, example, max(1, opts.repeat))
        for ours, theirs in pairs:
            console.print(f"mapping {ours:,.0f} docs/s, peer {theirs:,.1f}: {ours / theirs:.1f}x")
        if pairs:
            ratios = [ours / theirs for ours, theirs in pairs]
            console.print(f"mapping / peer: {spread(ratios, '{:.1f}x')}, {len(pairs)} pairs")
        else:
            console.print(f"peer: {note}")
        return
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as name:
        tmp = Path(name)
        added = rows_per_filing(data, tmp)
        rows = sum(added.values())
        console.print(
            f"a filing of {NAME} writes {rows} rows: "
            + ", ".join(f"{n} {k}" for k, n in sorted(added.items(), key=lambda kv: -kv[1]))
        )
        floor = Floor(docs, tmp, rows)
        mapping, mapping_floor = floor.around(lambda: mapping_rate(docs))
        against_peer, note = peer_pairs(docs, example, 0 if opts.no_peer else max(1, opts.repeat))
        # (processes, senders) -> one (docs/s, non-2xx, floor around it) per repetition
        http: dict[tuple[int, int], list[tuple[float, int, float]]] = {}
        for round_ in range(max(1, opts.repeat)):  # rounds: a slow spell hits every config
            for n in opts.workers:
                for c in opts.connections:
                    where = tmp / f"w{n}-c{c}-r{round_}"
                    where.mkdir()
                    (rate_nc, bad), near = floor.around(
                        lambda n=n, c=c, where=where: http_rate(data, where, opts.seconds, c, n)
                    )
                    http.setdefault((n, c), []).append((rate_nc, bad, near))
    peer = statistics.median(p for _, p in against_peer) if against_peer else None

    table = Table(title=f"CDA ingestion, {NAME} ({len(data) // 1024} KiB), {os.cpu_count()} CPUs")
    # "vs floor": against the floor run around the measure; "vs best": against the fastest
    # floor run of the whole benchmark (the stricter reading, and the one used before)
    numeric = ("docs/s", "vs floor", "vs best")
    for col in ("measure", *numeric, "notes"):
        table.add_column(col, justify="right" if col in numeric else "left")
    samples = floor.samples
    best_floor = max(samples)
    table.add_row(
        "floor",
        f"{min(samples):,.0f}-{max(samples):,.0f}",
        "1.00",
        "-",
        f"lxml parse + SHA-1 + {rows} SQLite rows in one commit (WAL, FULL), as many as "
        "a filing writes; "
        f"{len(samples)} runs, one before and one after each measure below",
    )
    table.add_row(
        "mapping only",
        f"{mapping:,.0f}",
        f"{mapping / mapping_floor:.2f}",
        f"{mapping / best_floor:.2f}",
        f"map_cda + extract_body in process; floor around it {mapping_floor:,.0f}",
    )
    for (n, c), runs in http.items():
        rates = [r for r, _, _ in runs]
        ratios = [r / near for r, _, near in runs]
        met = sum(r >= 300 and q >= 0.6 for r, q in zip(rates, ratios, strict=True))
        verdict = (
            ("meets" if met else "BELOW") if len(runs) == 1 else f"met in {met} of {len(runs)} runs"
        )
        table.add_row(
            f"HTTP $import-cda, {n} process{'es' if n > 1 else ''}, {c} senders",
            spread(rates, "{:,.0f}"),
            spread(ratios, "{:.2f}"),
            spread([r / best_floor for r in rates], "{:.2f}"),
            f"serve --workers {n}; wrk -t2 -c{c} {opts.seconds}s; "
            f"{sum(b for _, b, _ in runs)} non-2xx; floor around it "
            f"{spread([near for _, _, near in runs], '{:,.0f}')}; "
            f"target >=300 & >=0.60: {verdict}",
        )
    best = max(r for runs in http.values() for r, _, _ in runs)
    if peer is None:
        table.add_row("peer", "-", "-", "-", note)
    else:
        mean = sum(samples) / len(samples)
        table.add_row(
            "peer python-fhir-converter",
            f"{peer:,.0f}",
            f"{peer / mean:.2f}",
            f"{peer / best_floor:.2f}",
            note,
        )
        ratios = [ours / theirs for ours, theirs in against_peer]
        table.add_row(
            "mapping / peer",
            spread([ours for ours, _ in against_peer], "{:,.0f}"),
            spread(ratios, "{:.1f}x"),
            "-",
            f"map_cda + extract_body against the peer's conversion, {len(ratios)} pairs "
            f"measured together; target >=20x: met in {sum(r >= 20 for r in ratios)}",
        )
        table.caption = f"best HTTP ingest / peer conversion = {best / peer:.1f}x"
    console.print(table)
    console.print("floor runs in order: " + ", ".join(f"{r:,.0f}" for r in samples))


if __name__ == "__main__":
    main()
