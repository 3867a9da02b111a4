"""Crash safety: SIGKILL the server in the middle of a stream of writes (creates, updates,
transaction Bundles of Patient + DocumentReference + Binary, and CDA filings once
`$import-cda` is served), restart it on the same data directory, and check that

- every acknowledged (2xx) write is there: current version at least the acknowledged one,
  the acknowledged version readable from history with the content that was sent;
- every acknowledged transaction's three resources exist;
- nothing is half there: every stored DocumentReference has its Binary and its Patient,
  every Binary written by a transaction has its DocumentReference.

Each client write carries a unique tag so that what the server holds can be matched to
what was sent, acknowledged or not."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fhir_server.live_server import LiveServer
from tests.conftest import nir_with_key, patient
from tests.helpers import auth_headers, document_reference

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cda" / "ldl-ses.xml"
JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
STREAM_SECONDS = (1.5, 3.0)  # the kill comes at a random moment in this window
MAX_WRITES = 5000


@dataclass
class Acks:
    versions: dict[tuple[str, str], int] = field(default_factory=dict)  # (type, id) -> version
    families: dict[tuple[str, str, int], str] = field(default_factory=dict)  # tag per version
    transactions: list[dict[str, str]] = field(default_factory=list)
    cda: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0


def _nir(n: int) -> str:
    return nir_with_key(
        f"1{n % 100:02d}0{n // 100 % 100:02d}{n // 10000:02d}000{n % 7}"[:13].ljust(13, "0")
    )


def _transaction(tag: str, nir: str) -> dict:
    doc = document_reference("X", f"5.{tag}", description=tag)
    doc["subject"] = {"reference": "urn:uuid:p"}
    doc["content"][0]["attachment"] = {"contentType": "text/plain", "url": "urn:uuid:b"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:p",
                "resource": patient(nir, family=tag),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:d",
                "resource": doc,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": "urn:uuid:b",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "text/plain",
                    "data": base64.b64encode(tag.encode()).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }


def _cda(n: int) -> bytes:
    text = FIXTURE.read_text()
    text = text.replace('extension="LDL-0001"', f'extension="CRASH-{n}"', 1)
    return text.replace('extension="279035121518989"', f'extension="{_nir(900000 + n)}"')


def _stream(base: str, acks: Acks, stop: threading.Event, cda_ok: bool) -> None:
    h = {**JSON, **auth_headers()}
    with httpx.Client(base_url=base, timeout=5) as http:
        n = 0
        while not stop.is_set() and n < MAX_WRITES:
            n += 1
            tag = f"T{n}"
            kind = n % 4 if cda_ok else n % 3
            acks.sent += 1
            try:
                if kind == 0 and acks.versions:  # update a Patient this client created
                    (rtype, rid), version = random.choice(
                        [kv for kv in acks.versions.items() if kv[0][0] == "Patient"]
                    )
                    r = http.get(f"/fhir/Patient/{rid}")
                    if r.status_code != 200:
                        acks.errors.append(f"read {rid}: {r.status_code}")
                        continue
                    body = {**r.json(), "name": [{"family": tag}]}
                    r = http.put(f"/fhir/Patient/{rid}", json=body, headers=h)
                    if r.status_code == 200:
                        v = int(r.json()["meta"]["versionId"])
                        acks.versions[(rtype, rid)] = max(v, acks.versions[(rtype, rid)])
                        acks.families[(rtype, rid, v)] = tag
                elif kind == 1:
                    r = http.post("/fhir/Patient", json=patient(_nir(n), family=tag), headers=h)
                    if r.status_code == 201:
                        acks.versions[("Patient", r.json()["id"])] = 1
                        acks.families[("Patient", r.json()["id"], 1)] = tag
                elif kind == 2:
                    r = http.post("/fhir", json=_transaction(tag, _nir(n)), headers=h)
                    if r.status_code == 200:
                        ids = {
                            e["resource"]["resourceType"]: e["resource"]["id"]
                            for e in r.json()["entry"]
                        }
                        acks.transactions.append({**ids, "tag": tag})
                        acks.versions[("Patient", ids["Patient"])] = 1
                        acks.families[("Patient", ids["Patient"], 1)] = tag
                else:
                    r = http.post(
                        "/fhir/DocumentReference/$import-cda",
                        content=_cda(n),
                        headers={"content-type": "application/hl7-cda+xml", **auth_headers()},
                    )
                    if r.status_code in (200, 201):
                        acks.cda.append(r.json()["id"])
                if r.status_code >= 500:
                    acks.errors.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError:
                if not stop.is_set():
                    time.sleep(0.01)  # the kill: stop at the next check
                return


def _entries(http: httpx.Client, url: str | None) -> list[dict]:
    """Every entry of a paged Bundle, following its next links."""
    out = []
    while url:
        r = http.get(url, headers=auth_headers())
        assert r.status_code == 200, r.text
        bundle = r.json()
        out += bundle.get("entry") or []
        nxt = [x["url"] for x in bundle.get("link", []) if x["relation"] == "next"]
        url = re.sub(r"^https?://[^/]+", "", nxt[0]) if nxt else None
    return out


def _all(http: httpx.Client, rtype: str) -> list[dict]:
    return [e["resource"] for e in _entries(http, f"/fhir/{rtype}?_count=1000")]


def _all_history(http: httpx.Client, rtype: str) -> list[dict]:
    return _entries(http, f"/fhir/{rtype}/_history?_count=1000")


def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path):
    server = LiveServer(tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        probe = httpx.post(
            f"{server.base}/fhir/DocumentReference/$import-cda",
            content=b"<x/>",
            headers={"content-type": "application/hl7-cda+xml", **auth_headers()},
        )
        cda_ok = probe.status_code not in (404, 405)
        acks, stop = Acks(), threading.Event()
        client = threading.Thread(target=_stream, args=(server.base, acks, stop, cda_ok))
        client.start()
        time.sleep(random.uniform(*STREAM_SECONDS))
        server.kill()  # mid-stream: requests are in flight
        stop.set()
        client.join(timeout=30)
        assert not client.is_alive()
        assert acks.versions, "the stream acknowledged nothing before the kill"
        assert not acks.errors, acks.errors[:5]

        server.start()  # same data directory, same port
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for (rtype, rid), version in acks.versions.items():
                r = http.get(f"/fhir/{rtype}/{rid}", headers=auth_headers())
                assert r.status_code == 200, (rtype, rid, r.status_code)
                assert int(r.json()["meta"]["versionId"]) >= version
            for (rtype, rid, version), tag in acks.families.items():
                r = http.get(f"/fhir/{rtype}/{rid}/_history/{version}", headers=auth_headers())
                assert r.status_code == 200, (rtype, rid, version)
                assert r.json()["name"][0]["family"] == tag
            for tx in acks.transactions:
                for rtype in ("Patient", "DocumentReference", "Binary"):
                    r = http.get(f"/fhir/{rtype}/{tx[rtype]}?_format=json", headers=auth_headers())
                    assert r.status_code == 200, (tx, rtype)
            for did in acks.cda:
                r = http.get(f"/fhir/DocumentReference/{did}", headers=auth_headers())
                assert r.status_code == 200, (did, r.status_code)
                # the document's bytes (kept beside the database) came through the kill
                attachment = r.json()["content"][0]["attachment"]
                raw = http.get(attachment["url"], headers=auth_headers())
                assert raw.status_code == 200, (attachment["url"], raw.status_code)
                assert len(raw.content) == attachment["size"]
                digest = base64.b64encode(hashlib.sha1(raw.content).digest()).decode()
                assert digest == attachment["hash"], f"DocumentReference/{did}: bytes differ"

            # nothing half there, acknowledged or not
            binaries = {b["id"]: b for b in _all(http, "Binary")}
            patients = {p["id"] for p in _all(http, "Patient")}
            # every live DocumentReference, whatever its patient (a search must name one):
            # the newest version of each in the type's history
            newest: dict[str, dict] = {}
            for entry in _all_history(http, "DocumentReference"):
                newest.setdefault(entry["fullUrl"].rsplit("/", 1)[1], entry)
            docs = [e["resource"] for e in newest.values() if "resource" in e]
            attached = set()
            for doc in docs:
                url = doc["content"][0]["attachment"].get("url", "")
                bid = url.rsplit("/", 1)[-1]
                assert bid in binaries, f"DocumentReference/{doc['id']} without its Binary {url}"
                attached.add(bid)
                subject = doc["subject"]["reference"].rsplit("/", 1)[-1]
                assert subject in patients, f"DocumentReference/{doc['id']} without its Patient"
            orphans = set(binaries) - attached
            assert not orphans, f"Binaries without a DocumentReference: {sorted(orphans)[:5]}"
        print(
            f"\nkilled after {acks.sent} writes sent: {len(acks.versions)} resources, "
            f"{len(acks.transactions)} transactions, {len(acks.cda)} CDA filings acknowledged; "
            f"{len(docs)} documents on restart"
        )
    finally:
        server.stop()
