"""`serve --workers 2`: two processes, each taking its share of the connections, and a
clean stop. Real processes on a loopback port (Linux: SO_REUSEPORT)."""

from __future__ import annotations

import http.client
import signal
import socket
import time

import psutil
import pytest

from fhir_server.api import processes
from fhir_server.live_server import LiveServer

pytestmark = pytest.mark.skipif(not processes.supported(), reason="no SO_REUSEPORT here")


def _connections_by_process(parent: int, port: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for child in psutil.Process(parent).children():
        if "spawn_main" not in " ".join(child.cmdline()):
            continue  # multiprocessing's resource tracker
        held = [
            c
            for c in child.net_connections(kind="tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        ]
        out[child.pid] = len(held)
    return out


def _listening(parent: int, port: int) -> int:
    return sum(
        1
        for child in psutil.Process(parent).children()
        for c in child.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
    )


def test_two_processes_share_the_connections_and_stop_together(tmp_path):
    server = LiveServer(tmp_path / "data", tmp_path / "server.log", workers=2)
    server.start(timeout=60)  # healthy as soon as the first process listens
    assert server.proc is not None
    deadline = time.monotonic() + 60
    while _listening(server.proc.pid, server.port) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    clients = []
    try:
        # 16 keep-alive connections opened at once (a sender's pool): with one shared
        # listening socket, the first process awake took nearly all of them
        for _ in range(16):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.connect()
            clients.append(conn)
        for conn in clients:
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        held = _connections_by_process(server.proc.pid, server.port)
        assert len(held) == 2, held
        assert sum(held.values()) == 16, held
        assert all(n > 0 for n in held.values()), held  # both take connections
        children = [psutil.Process(pid) for pid in held]
    finally:
        for conn in clients:
            conn.close()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
    assert code == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", server.port))


def test_an_address_in_use_fails_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LiveServer(tmp_path / "data", tmp_path / "server.log", port=port, workers=2)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="server exited"):
            server.start(timeout=60)
    assert server.proc is not None and server.proc.wait(timeout=10) != 0
    assert "Address already in use" in (tmp_path / "server.log").read_text()
    assert time.monotonic() - started < 30
