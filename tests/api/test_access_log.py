"""The access log: one line per request with method, path, query parameter names, status,
duration and the actor; never a query value (an INS, a name)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.auth.tokens import DevIssuer
from fhir_server.config import Settings
from fhir_server.live_server import LiveServer
from tests.access.conftest import HOSPITAL, TREATING
from tests.conftest import INS_TEST_SYSTEM, VALID_INS
from tests.ingest.helpers import CDA, FIXTURES

ACCESS = "fhir_server.access"
BY_INS = {"identifier": f"{INS_TEST_SYSTEM}|{VALID_INS}", "family": "PAT-TROIS", "_count": "5"}
DURATION = r"\d+\.\dms"


def _app(tmp_path: Path, **settings: object) -> TestClient:
    config = Settings(data_dir=tmp_path, auth="dev", mongodb_uri=None, **settings)
    return TestClient(create_app(config))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _app(tmp_path) as c:
        yield c


def _bearer(data_dir: Path, role: str, sub: str, **claims: str) -> dict[str, str]:
    jwt = DevIssuer.load(data_dir).mint_token(role, sub, **claims)
    return {"authorization": f"Bearer {jwt}", "accept": "application/fhir+json"}


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS]


def test_a_search_by_ins_is_logged_without_the_ins(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    headers = _bearer(tmp_path, "practitioner", "dr-house", rpps=TREATING)

    assert client.get("/fhir/Patient", params=BY_INS, headers=headers).status_code == 200

    [line] = _lines(caplog)
    assert re.fullmatch(
        rf"GET /fhir/Patient\?identifier&family&_count 200 {DURATION} "
        r"sub=dr-house role=practitioner",
        line,
    ), line
    for value in (VALID_INS, "PAT-TROIS", "1.2.250.1.213"):
        assert value not in caplog.text


def test_a_request_without_a_valid_token_is_logged_without_an_actor(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    forged = {"authorization": "Bearer not-a-token"}
    assert client.get("/fhir/Patient", params=BY_INS, headers=forged).status_code == 401
    assert client.get("/health").status_code == 200
    lines = _lines(caplog)
    assert re.fullmatch(
        rf"GET /fhir/Patient\?identifier&family&_count 401 {DURATION} "
        r"sub=- role=-",
        lines[0],
    ), lines
    assert re.fullmatch(rf"GET /health 200 {DURATION} sub=- role=-", lines[1]), lines
    assert VALID_INS not in caplog.text


def test_a_value_sent_without_a_name_is_not_logged(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    headers = _bearer(tmp_path, "practitioner", "dr-house", rpps=TREATING)
    client.get(f"/fhir/Patient?_count=5&{VALID_INS}&=PAT-TROIS", headers=headers)
    [line] = _lines(caplog)
    assert line.startswith("GET /fhir/Patient?_count&?&? "), line
    assert VALID_INS not in caplog.text and "PAT-TROIS" not in caplog.text


def test_a_filing_is_logged_with_its_sender(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    headers = {**_bearer(tmp_path, "system", "lab-robot", organization=HOSPITAL), **CDA}
    data = (FIXTURES / "vsm.xml").read_bytes()
    r = client.post("/fhir/DocumentReference/$import-cda", content=data, headers=headers)
    assert r.status_code == 201, r.text
    [line] = _lines(caplog)
    assert re.fullmatch(
        rf"POST /fhir/DocumentReference/\$import-cda 201 {DURATION} sub=lab-robot role=system",
        line,
    ), line
    assert VALID_INS not in caplog.text


def test_the_access_log_can_be_switched_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    with _app(tmp_path, access_log=False) as client:
        assert client.get("/health").status_code == 200
    assert _lines(caplog) == []


def test_the_server_writes_the_access_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = LiveServer(tmp_path / "data", log, auth="dev", log_level="info")
    server.start()
    try:
        headers = _bearer(tmp_path / "data", "practitioner", "dr-house", rpps=TREATING)
        r = httpx.get(f"{server.base}/fhir/Patient", params=BY_INS, headers=headers)
        assert r.status_code == 200
    finally:
        server.stop()
    text = log.read_text()
    assert re.search(
        rf"INFO: +GET /fhir/Patient\?identifier&family&_count 200 {DURATION} "
        r"sub=dr-house role=practitioner\n",
        text,
    ), text
    assert VALID_INS not in text
