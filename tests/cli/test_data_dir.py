"""The operator commands work on the server's data directory (`--data-dir`, else
DMP_FHIR_DATA_DIR, else ./data), and refuse a place the server never made, creating
nothing there."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from fhir_server.cli import main
from fhir_server.live_server import LiveServer
from tests.access.conftest import HOSPITAL, TREATING
from tests.conftest import INS_TEST_SYSTEM, VALID_INS
from tests.helpers import served_data_dir
from tests.ingest.helpers import FIXTURES

# every command that needs what the server left in its data directory
NEEDS_DATA = {
    "token": ["token", "--role", "system", "--organization", HOSPITAL],
    "verify-audit": ["verify-audit"],
    "housekeeping": ["housekeeping"],
    "reindex": ["reindex"],
    "import": ["import", str(FIXTURES / "vsm.xml")],
}
STORE_COMMANDS = [c for c in NEEDS_DATA if c != "token"]


@pytest.fixture(autouse=True)
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no data dir or MongoDB from the environment; run from an
    empty folder, where ./data is not."""
    for name in ("DMP_FHIR_DATA_DIR", "DMP_FHIR_MONGODB_URI", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _token(*extra: str, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["token", "--role", "practitioner", "--rpps", TREATING, *extra]
    assert main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip()


def _search_patients(base: str, jwt: str) -> int:
    query = {"identifier": f"{INS_TEST_SYSTEM}|{VALID_INS}"}
    headers = {"authorization": f"Bearer {jwt}", "accept": "application/fhir+json"}
    return httpx.get(f"{base}/fhir/Patient", params=query, headers=headers).status_code


def _intact_events(out: str) -> int:
    found = re.search(r"audit chain intact: (\d+) AuditEvents", out)
    assert found, out
    return int(found.group(1))


def test_token_and_verify_audit_use_the_directory_the_server_was_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "srv"
    server = LiveServer(data, tmp_path / "server.log", auth="dev")
    server.start()
    try:
        by_flag = _token("--data-dir", str(data), capsys=capsys)
        assert _search_patients(server.base, by_flag) == 200
        assert main(["verify-audit", "--data-dir", str(data)]) == 0
        assert _intact_events(capsys.readouterr().out) >= 1  # the search above is in it

        monkeypatch.setenv("DMP_FHIR_DATA_DIR", str(data))
        by_env = _token(capsys=capsys)
        assert _search_patients(server.base, by_env) == 200
        assert main(["verify-audit"]) == 0
        assert _intact_events(capsys.readouterr().out) >= 2
    finally:
        server.stop()
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_store_commands_find_the_server_store_through_the_environment(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DMP_FHIR_DATA_DIR", str(served_data_dir(tmp_path / "srv")))
    assert main(NEEDS_DATA[command]) == 0, capsys.readouterr()
    assert not (tmp_path / "data").exists()


# a place without the server's data: an empty folder named by the flag, a missing one
# named by the environment, ./data when neither is given and it is not there
PLACES = {
    "flag": lambda root: (["--data-dir", "empty"], root / "empty"),
    "env": lambda root: ([], root / "missing"),
    "default": lambda root: ([], root / "data"),
}


@pytest.mark.parametrize("how", PLACES)
@pytest.mark.parametrize("command", NEEDS_DATA)
def test_a_place_the_server_never_made_is_refused_and_left_alone(
    command: str,
    how: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    if how == "env":
        monkeypatch.setenv("DMP_FHIR_DATA_DIR", "missing")
    flag, looked_in = PLACES[how](tmp_path.resolve())
    before = sorted(tmp_path.rglob("*"))

    code = main([*NEEDS_DATA[command], *flag])

    out, err = capsys.readouterr()
    assert code != 0
    assert f" in {looked_in} " in err  # the absolute path, though given relative
    assert "--data-dir" in err and "DMP_FHIR_DATA_DIR" in err
    assert out == ""
    assert sorted(tmp_path.rglob("*")) == before  # no directory, key or database file


def test_a_served_directory_without_the_dev_key_gives_no_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # served with auth=none, the server made its store but no issuer key
    data = served_data_dir(tmp_path / "srv", auth="none")
    assert main([*NEEDS_DATA["token"], "--data-dir", str(data)]) != 0
    assert "no development issuer key" in capsys.readouterr().err
    assert not (data / "dev-issuer-key.pem").exists()


def test_token_needs_the_dev_key_whatever_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DMP_FHIR_MONGODB_URI", "mongodb://127.0.0.1:9/dmp")
    assert main([*NEEDS_DATA["token"], "--data-dir", "empty"]) != 0
    assert str(tmp_path.resolve() / "empty") in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()
