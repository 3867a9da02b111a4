"""Soak: N minutes of mixed filing, search and reads from concurrent clients on loopback
against the embedded SQLite store, the server running as its own process (uvicorn via
`python -m fhir_server.cli serve`).

Filing is an IHE MHD ITI-65-style transaction Bundle (Patient by conditional create on the
INS, DocumentReference, Binary), or a raw CDA through `$import-cda` when the server offers
it. Every interval it prints throughput, p99 latency, errors and the server's resident
memory; at the end, the figures over time and RSS at start vs end.

    python benchmarks/soak.py --minutes 10          # the full run
    python benchmarks/soak.py --minutes 1           # a smoke run

Only loopback; every loop is bounded by the deadline; only the server started here is
stopped."""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from fhir_server.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[1]
CDA_FIXTURE = ROOT / "tests" / "fixtures" / "cda" / "ldl-ses.xml"
JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"


def nir(n: int) -> str:
    body = f"1{n:012d}"[-13:]
    body = "1" + body[1:]
    return body + f"{97 - int(body) % 97:02d}"


# -- the server -----------------------------------------------------------------------


def start_server(data_dir: Path, log: Path) -> LiveServer:
    # authentication off, as in the REST suites: this measures the store and the HTTP path
    try:
        return LiveServer(data_dir, log).start()
    except (RuntimeError, TimeoutError):
        sys.exit(f"server did not start; see {log}")


def auth_headers() -> dict[str, str]:
    return {}  # the server runs with DMP_FHIR_AUTH=none (see start_server)


# -- the workload ---------------------------------------------------------------------


@dataclass
class Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    patients: list[str] = field(default_factory=list)  # Patient ids
    nirs: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    binaries: list[str] = field(default_factory=list)
    samples: list[tuple[float, str, float, bool]] = field(default_factory=list)
    counter: int = 0

    def next_n(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter


def transaction(tag: str, ins: str, existing: bool) -> dict:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": INS_SYSTEM, "value": ins}],
        "name": [{"family": f"SOAK-{tag}", "given": ["Camille"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    request = {"method": "POST", "url": "Patient"}
    if existing:
        request["ifNoneExist"] = f"identifier={INS_SYSTEM}|{ins}"
    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:1.2.250.77.{tag}"},
        "subject": {"reference": "urn:uuid:p"},
        "description": f"soak {tag}",
        "content": [{"attachment": {"contentType": "application/pdf", "url": "urn:uuid:b"}}],
    }
    pdf = b"%PDF-1.4 soak " + tag.encode() + b" " + os.urandom(2048)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": patient, "request": request},
            {
                "fullUrl": "urn:uuid:d",
                "resource": doc,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": "urn:uuid:b",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "data": base64.b64encode(pdf).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }


def cda(n: int, ins: str) -> bytes:
    text = CDA_FIXTURE.read_text()
    text = text.replace('extension="LDL-0001"', f'extension="SOAK-{n}"', 1)
    return text.replace('extension="279035121518989"', f'extension="{ins}"').encode()


def worker(base: str, shared: Shared, deadline: float, use_cda: bool, seed: int) -> None:
    rnd = random.Random(seed)
    h = {**JSON, **auth_headers()}
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() < deadline:
            with shared.lock:
                have_docs = bool(shared.docs)
            op = rnd.random()
            kind = "file" if op < 0.3 or not have_docs else ("search" if op < 0.65 else "read")
            t0 = time.perf_counter()
            ok = False
            try:
                if kind == "file":
                    n = shared.next_n()
                    with shared.lock:
                        reuse = bool(shared.nirs) and rnd.random() < 0.5
                        ins = rnd.choice(shared.nirs) if reuse else nir(n)
                    if use_cda:
                        r = http.post(
                            "/fhir/DocumentReference/$import-cda",
                            content=cda(n, ins),
                            headers={"content-type": "application/hl7-cda+xml", **auth_headers()},
                        )
                        ok = r.status_code in (200, 201)
                        if ok:
                            body = r.json()
                            with shared.lock:
                                shared.docs.append(body["id"])
                                shared.nirs.append(ins)
                                ref = body.get("subject", {}).get("reference", "")
                                if ref.startswith("Patient/"):
                                    shared.patients.append(ref.split("/", 1)[1])
                    else:
                        r = http.post("/fhir", json=transaction(str(n), ins, reuse), headers=h)
                        ok = r.status_code == 200
                        if ok:
                            ids = {
                                e["resource"]["resourceType"]: e["resource"]["id"]
                                for e in r.json()["entry"]
                            }
                            with shared.lock:
                                shared.patients.append(ids["Patient"])
                                shared.docs.append(ids["DocumentReference"])
                                shared.binaries.append(ids["Binary"])
                                if not reuse:
                                    shared.nirs.append(ins)
                elif kind == "search":
                    with shared.lock:
                        pid = rnd.choice(shared.patients) if shared.patients else "none"
                        ins = rnd.choice(shared.nirs) if shared.nirs else "none"
                    if rnd.random() < 0.7:
                        r = http.get(
                            f"/fhir/DocumentReference?patient={pid}&status=current&_count=20",
                            headers=h,
                        )
                    else:
                        r = http.get(f"/fhir/Patient?identifier={INS_SYSTEM}|{ins}", headers=h)
                    ok = r.status_code == 200
                else:
                    with shared.lock:
                        rtype, rid = rnd.choice(
                            [("DocumentReference", rnd.choice(shared.docs))]
                            + ([("Binary", rnd.choice(shared.binaries))] if shared.binaries else [])
                        )
                    r = http.get(f"/fhir/{rtype}/{rid}", headers=auth_headers())
                    ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latency = time.perf_counter() - t0
            with shared.lock:
                shared.samples.append((time.monotonic(), kind, latency, ok))


# -- reporting ------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    if len(values) < 100:
        return max(values)
    return statistics.quantiles(values, n=100)[98]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between reports")
    ap.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="dmp-soak-")
    data_dir = args.data_dir or Path(tmp.name) / "data"
    log = Path(tmp.name) / "server.log"
    live = start_server(data_dir, log)
    assert live.proc is not None
    base = live.base
    server = psutil.Process(live.proc.pid)
    try:
        probe = httpx.post(
            f"{base}/fhir/DocumentReference/$import-cda",
            content=b"<x/>",
            headers={"content-type": "application/hl7-cda+xml"},
        )
        use_cda = probe.status_code not in (404, 405)
        rss_start = server.memory_info().rss
        print(
            f"soak: {args.minutes} min, {args.clients} clients, filing by "
            f"{'$import-cda' if use_cda else 'transaction Bundle'}, server pid {live.proc.pid}, "
            f"RSS at start {rss_start / 2**20:.1f} MiB",
            flush=True,
        )
        shared = Shared()
        start = time.monotonic()
        deadline = start + args.minutes * 60
        threads = [
            threading.Thread(target=worker, args=(base, shared, deadline, use_cda, i), daemon=True)
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        windows: list[dict] = []
        seen = 0
        window_start = start
        print(
            f"{'t(s)':>6} {'req/s':>8} {'file/s':>7} {'p99 ms':>8} {'p99 file':>9} "
            f"{'p99 read':>9} {'errors':>7} {'RSS MiB':>8}",
            flush=True,
        )

        def report() -> None:
            nonlocal seen, window_start
            now = time.monotonic()
            with shared.lock:
                window = shared.samples[seen:]
                seen = len(shared.samples)
            span = max(now - window_start, 1e-9)
            window_start = now
            row = {
                "t": round(now - start),
                "requests": len(window),
                "throughput": len(window) / span,
                "filings_per_s": sum(1 for s in window if s[1] == "file" and s[3]) / span,
                "p99_ms": p99([s[2] for s in window]) * 1000,
                "p99_file_ms": p99([s[2] for s in window if s[1] == "file"]) * 1000,
                "p99_read_ms": p99([s[2] for s in window if s[1] != "file"]) * 1000,
                "errors": sum(1 for s in window if not s[3]),
                "rss_mib": server.memory_info().rss / 2**20,
            }
            windows.append(row)
            print(
                f"{row['t']:>6} {row['throughput']:>8.1f} {row['filings_per_s']:>7.1f} "
                f"{row['p99_ms']:>8.1f} {row['p99_file_ms']:>9.1f} {row['p99_read_ms']:>9.1f} "
                f"{row['errors']:>7} {row['rss_mib']:>8.1f}",
                flush=True,
            )

        next_report = start + args.interval
        while True:
            target = min(next_report, deadline)
            now = time.monotonic()
            if now < target:
                time.sleep(target - now)
            if time.monotonic() >= deadline - 0.5:
                break
            report()
            next_report += args.interval
        for t in threads:
            t.join(timeout=60)  # each finishes its request in flight (30 s client timeout)
        report()  # the last window, up to the end
        rss_end = server.memory_info().rss
        samples = shared.samples
        total_errors = sum(1 for s in samples if not s[3])
        by_kind = {k: [s[2] for s in samples if s[1] == k] for k in ("file", "search", "read")}
        summary = {
            "minutes": args.minutes,
            "clients": args.clients,
            "filing": "$import-cda" if use_cda else "transaction",
            "requests": len(samples),
            "errors": total_errors,
            "throughput_avg": len(samples) / (args.minutes * 60),
            "p99_ms_overall": p99([s[2] for s in samples]) * 1000,
            "p99_ms_by_kind": {k: p99(v) * 1000 for k, v in by_kind.items()},
            "count_by_kind": {k: len(v) for k, v in by_kind.items()},
            "documents_filed": len(shared.docs),
            "rss_start_mib": rss_start / 2**20,
            "rss_end_mib": rss_end / 2**20,
            "windows": windows,
        }
        print("\nsummary")
        print(
            f"  requests {summary['requests']} ({summary['count_by_kind']}), "
            f"errors {total_errors}, documents filed {summary['documents_filed']}"
        )
        print(
            f"  throughput avg {summary['throughput_avg']:.1f} req/s; over time "
            + " ".join(f"{w['throughput']:.0f}" for w in windows)
        )
        print(
            f"  p99 overall {summary['p99_ms_overall']:.1f} ms; by kind "
            + ", ".join(f"{k} {v:.1f}" for k, v in summary["p99_ms_by_kind"].items())
            + "; over time "
            + " ".join(f"{w['p99_ms']:.0f}" for w in windows)
        )
        print(
            f"  server RSS start {summary['rss_start_mib']:.1f} MiB, end "
            f"{summary['rss_end_mib']:.1f} MiB ({(rss_end / rss_start - 1) * 100:+.0f}%); "
            "over time " + " ".join(f"{w['rss_mib']:.0f}" for w in windows)
        )
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        return 0 if total_errors == 0 else 1
    finally:
        live.stop()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
