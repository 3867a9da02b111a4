"""README.md as a newcomer uses it: its shell blocks run as printed against a live server,
and its links lead to files of the repository.

The test starts its own server (`dmp-fhir serve`, the development token issuer, a new data
directory, a free port), so it skips the two set-up commands and every `serve` line. In
what it runs it changes only the base URL (`http://127.0.0.1:8080` becomes the test's) and
gives the data directory through `DMP_FHIR_DATA_DIR`; the project's `bin` comes first on
PATH, as after `source .venv/bin/activate`. Each block runs on its own, in README order,
with `bash -euo pipefail`, from a directory that mirrors a fresh clone.

Convention for README writers: a command that shows an HTTP status prints it alone on a line
(`curl -s -o /dev/null -w '%{http_code}\\n' ...`) and ends with a comment that starts with
that status (`# 404: hidden, as if absent`). The statuses printed must be exactly the ones
the comments announce, in order; no other line of output may be three digits alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_server.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BASE_IN_README = "http://127.0.0.1:8080"
SETUP = ["bash scripts/serve.sh", "bash scripts/test.sh"]

BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
EXPECTED = re.compile(r"(?:^|\s)#\s*(\d{3})(?!\d)")
STATUS_LINE = re.compile(r"\d{3}")
SERVER_LINE = re.compile(r"^\s*bash scripts/(serve|test)\.sh\b|\bdmp-fhir serve\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def sh_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def runnable(block: str) -> str:
    """The block without the lines this test stands in for (set-up, `serve`)."""
    kept = []
    for line in block.splitlines():
        if SERVER_LINE.search(line):
            assert not line.rstrip().endswith("\\"), f"a server line continues: {line}"
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def has_commands(script: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in script.splitlines())


def expected_statuses(script: str) -> list[str]:
    return [m.group(1) for line in script.splitlines() for m in [EXPECTED.search(line)] if m]


def printed_statuses(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if STATUS_LINE.fullmatch(line.strip())]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("readme")
    live = LiveServer(tmp / "data", tmp / "server.log", auth="dev")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory holding the repository's files (not its data, venvs or caches),
    so that a command writing a file writes it here."""
    where = tmp_path_factory.mktemp("clone")
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name != "data":
            (where / entry.name).symlink_to(entry)
    return where


def environment(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DMP_FHIR_") and k not in ("MONGODB_URI", "VIRTUAL_ENV")
    }
    bindir = Path(sys.executable).parent  # the project's venv: not resolved past its symlink
    assert (bindir / "dmp-fhir").exists(), f"dmp-fhir is not installed in {bindir}"
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["DMP_FHIR_DATA_DIR"] = str(data_dir)
    return env


def test_the_set_up_commands_come_first():
    blocks = sh_blocks()
    assert blocks, "README.md has no ```sh block"
    commands = [line.split("#")[0].strip() for line in blocks[0].splitlines()]
    assert commands == SETUP


def test_links_stay_inside_the_repository():
    links = LINK.findall(README.read_text(encoding="utf-8"))
    assert links, "README.md links to nothing"
    for url in links:
        target = (ROOT / url.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), f"README links to {url}"


def test_every_shell_block_runs_as_printed(server, clone):
    if shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the README's commands need curl")
        pytest.skip("curl is not installed")
    env = environment(server.data_dir)
    ran, announced = 0, 0
    for number, block in enumerate(sh_blocks(), start=1):
        script = runnable(block)
        if not has_commands(script):
            continue
        script = script.replace(BASE_IN_README, server.base)
        assert ":8080" not in script, f"block {number} talks to another server"
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        context = (
            f"README block {number}:\n{script}\n--- stdout:\n{done.stdout}\n"
            f"--- stderr:\n{done.stderr}\n--- server log:\n{server.log.read_text()[-3000:]}"
        )
        assert done.returncode == 0, context
        expected = expected_statuses(script)
        assert printed_statuses(done.stdout) == expected, context
        ran += 1
        announced += len(expected)
    # the walkthrough and the filing examples at least, with their statuses
    assert ran >= 2 and announced >= 10, (ran, announced)
