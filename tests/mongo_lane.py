"""The MongoDB test lane: a real MongoDB from MONGODB_URI, else a mongoeco wire server that
the test session starts (scripts/mongoeco_server.py, run by a Python 3.13 environment with
mongoeco installed: .venv-mongo, made by scripts/test.sh, or $MONGOECO_PYTHON)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "scripts" / "mongoeco_server.py"
START_TIMEOUT_S = 30.0


def mongoeco_python() -> Path | None:
    explicit = os.environ.get("MONGOECO_PYTHON")
    candidate = Path(explicit) if explicit else REPO / ".venv-mongo" / "bin" / "python"
    return candidate if candidate.exists() else None


class MongoecoServer:
    """One mongoeco server process. Port 0 picks a free port; after `kill`, `start` again
    reuses the port it had, so a client can reconnect to the same address."""

    def __init__(self, python: Path, *, port: int = 0, sqlite_path: Path | None = None):
        self.python, self.port, self.sqlite_path = python, port, sqlite_path
        self.proc: subprocess.Popen[str] | None = None
        self.uri: str | None = None
        # the server's stderr goes here for the life of the process, hence no `with`
        self._log = tempfile.NamedTemporaryFile("w+", prefix="mongoeco-", suffix=".log")  # noqa: SIM115

    def start(self) -> str:
        cmd = [str(self.python), str(LAUNCHER), "--port", str(self.port)]
        if self.sqlite_path is not None:
            cmd += ["--sqlite", str(self.sqlite_path)]
        # stderr to a file: a pipe nobody reads could fill and stall the server
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self._first_line()
        if not line.startswith("mongodb://"):
            self.stop()
            self._log.seek(0)
            raise RuntimeError(f"mongoeco did not start: {line!r}\n{self._log.read()[-2000:]}")
        self.uri = line
        self.port = urlsplit(line).port or self.port
        return line

    def _first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(START_TIMEOUT_S)
        return box[0].strip() if box else ""

    def kill(self) -> None:
        """SIGKILL: the server dies as in a crash, no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


@dataclass
class Lane:
    uri: str | None
    source: str  # "MONGODB_URI", "mongoeco" or "" when unavailable
    reason: str = ""
    server: MongoecoServer | None = None

    def db_uri(self, db: str) -> str:
        """The lane's URI with `db` as its path (the store takes the database from it)."""
        assert self.uri is not None
        parts = urlsplit(self.uri)
        return parts._replace(path="/" + db).geturl()


def start_lane() -> Lane:
    if os.environ.get("MONGODB_URI"):
        return Lane(os.environ["MONGODB_URI"], "MONGODB_URI")
    python = mongoeco_python()
    if python is None:
        return Lane(
            None,
            "",
            "no MongoDB: MONGODB_URI unset and no mongoeco environment "
            "(.venv-mongo or $MONGOECO_PYTHON; `bash scripts/test.sh` makes one)",
        )
    server = MongoecoServer(python)
    try:
        uri = server.start()
    except (OSError, RuntimeError) as exc:
        return Lane(None, "", f"mongoeco server failed to start: {exc}")
    return Lane(uri, "mongoeco", server=server)


def drop_database(uri: str, db: str) -> None:
    from pymongo import MongoClient

    with MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
        client.drop_database(db)
