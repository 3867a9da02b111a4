"""`dmp-fhir import`: in process into a server's data dir, and `--url` against a server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fhir_server.cli import main
from tests.helpers import served_data_dir
from tests.ingest.helpers import FIXTURES

REPO = Path(__file__).resolve().parents[2]
GOOD = ["ldl-ses.xml", "ldl-ses-rplc.xml", "cr-bio-n3.xml", "vsm.xml"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs" / "nested"
    docs.mkdir(parents=True)
    for name in GOOD:
        shutil.copy(FIXTURES / name, docs / name)
    return tmp_path / "docs"


def _documents(base: str) -> list[dict]:
    # a DocumentReference search must name the patient and the status (PDSm ITI-67)
    patients = httpx.get(f"{base}/Patient", params={"_count": 100}).json()
    docs = []
    for p in patients.get("entry") or []:
        query = {"patient": p["resource"]["id"], "status": "current,superseded", "_count": 100}
        bundle = httpx.get(f"{base}/DocumentReference", params=query)
        assert bundle.status_code == 200, bundle.text
        docs += [e["resource"] for e in bundle.json().get("entry") or []]
    return docs


def test_in_process_import_files_a_folder(folder, tmp_path, capsys):
    data = served_data_dir(tmp_path / "data")
    assert main(["import", str(folder), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "4 filed, 0 duplicate, 0 refused" in out  # the replacement waited for its parent
    assert main(["import", str(folder), "--data-dir", str(data)]) == 0
    assert "0 filed, 4 duplicate, 0 refused" in capsys.readouterr().out


def test_in_process_import_reports_refusals(folder, tmp_path, capsys):
    shutil.copy(FIXTURES / "broken-xxe-passwd.xml", folder / "xxe.xml")
    data = served_data_dir(tmp_path / "d")
    code = main(["import", str(folder), "--data-dir", str(data), "--security-label", "MASQUE_PS"])
    out = capsys.readouterr().out
    assert code == 1
    assert "4 filed, 0 duplicate, 1 refused" in out
    assert "DOCTYPE" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path: Path, auth: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "DMP_FHIR_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--auth", auth]
    proc = subprocess.Popen([*cmd, "--data-dir", str(tmp_path / "srv")], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base + "/fhir"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "none")


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "dev")


def test_import_needs_a_token_when_the_server_asks(folder, dev_server, tmp_path, capsys):
    from fhir_server.auth.tokens import DevIssuer

    vsm = str(folder / "nested" / "vsm.xml")
    assert main(["import", vsm, "--url", dev_server]) == 1
    assert "401" in capsys.readouterr().out
    issuer = DevIssuer.load_or_create(tmp_path / "srv")
    jwt = issuer.mint_token("system", "lab-robot", organization="1990000018")
    assert main(["import", vsm, "--url", dev_server, "--token", jwt]) == 0
    assert "1 filed" in capsys.readouterr().out


def test_import_to_a_running_server(folder, server, capsys):
    code = main(["import", str(folder), "--url", server, "--security-label", "INVISIBLE_PATIENT"])
    assert code == 0, capsys.readouterr().out
    assert "4 filed, 0 duplicate, 0 refused" in capsys.readouterr().out
    docs = _documents(server)
    assert len(docs) == 4
    assert all(
        "INVISIBLE_PATIENT" in {label["coding"][0]["code"] for label in d["securityLabel"]}
        for d in docs
    )
    assert sorted(d["status"] for d in docs) == ["current", "current", "current", "superseded"]
    assert main(["import", str(folder / "nested" / "vsm.xml"), "--url", server]) == 0
    assert "0 filed, 1 duplicate, 0 refused" in capsys.readouterr().out


def test_unknown_label_is_refused_through_the_server(folder, server, capsys):
    assert main(["import", str(folder), "--url", server, "--security-label", "SECRET"]) == 1
    assert "SECRET" in capsys.readouterr().out
