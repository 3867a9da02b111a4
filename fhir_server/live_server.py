"""A real server process (`python -m fhir_server.cli serve`) on a free loopback port: the
one launcher of the benchmarks and of the tests that need a process of their own (to kill
it, or to drive it with a real client). Only the process group started here is signalled."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`dmp-fhir serve` on `data_dir`; `auth` "none" (trusted) or "dev" (the local issuer,
    its key in `data_dir`); server output goes to `log` (else discarded)."""

    def __init__(
        self,
        data_dir: Path,
        log: Path | None = None,
        *,
        port: int | None = None,
        auth: str = "none",
        workers: int = 1,
        mongodb_uri: str | None = None,
        env: dict[str, str] | None = None,
        log_level: str = "warning",
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = port or free_port()
        self.auth = auth
        self.workers = workers
        self.mongodb_uri = mongodb_uri
        self.extra_env = env or {}
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def fhir_base(self) -> str:
        return f"{self.base}/fhir"

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        cmd += ["--workers", str(self.workers), "--auth", self.auth]
        if self.mongodb_uri:
            cmd += ["--mongodb-uri", self.mongodb_uri]
        return cmd

    def start(self, timeout: float = 30.0) -> LiveServer:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DMP_FHIR_LOG_LEVEL": self.log_level}
        env["DMP_FHIR_PUBLIC_BASE_URL"] = self.fhir_base
        # the store is the one named here, never one the calling environment points at
        for name in ("MONGODB_URI", "DMP_FHIR_MONGODB_URI"):
            env.pop(name, None)
        env.update(self.extra_env)
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                self._command(),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers form a group of their own
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        self._wait(timeout)
        return self

    def _tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log and self.log.exists() else ""

    def _wait(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self._tail()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"server not healthy in {timeout}s: {self._tail()}")

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no lifespan."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LiveServer:
        return self.start() if self.proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
