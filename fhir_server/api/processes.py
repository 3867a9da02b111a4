"""`serve --workers N`: N server processes, each listening on its own socket.

uvicorn's own multi-process mode shares one listening socket between its workers, and the
worker whose event loop wakes first accepts every pending connection: with 32 keep-alive
clients, one process held 30 and the other 2, so the second core stayed mostly idle. Here
each process binds the address with SO_REUSEPORT, and the kernel spreads new connections
evenly over the listening sockets.

The parent only supervises: it reserves the address first (so a port already in use fails
at once), starts the processes, restarts one that dies, and stops them all on SIGINT or
SIGTERM. Where SO_REUSEPORT is missing (Windows), uvicorn's mode is used instead.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import socket
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

APP = "fhir_server.api.app:create_app"
# a process that keeps dying this soon after its start is not restarted in a loop
MIN_LIFETIME_S = 5.0
STOP_TIMEOUT_S = 15.0


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # only sockets of the same user may join the group (Linux)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve_one(host: str, port: int, options: dict[str, Any]) -> None:
    """One server process: its own listening socket, the app built from the environment."""
    import uvicorn

    sock = _socket(host, port)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def serve(host: str, port: int, workers: int, options: dict[str, Any]) -> int:
    """Run `workers` server processes on host:port until SIGINT / SIGTERM."""
    reserved = _socket(host, port)  # fails now if the address is taken; never listens
    port = reserved.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        proc = spawn.Process(target=_serve_one, args=(host, port, options), daemon=False)
        proc.start()
        return proc

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    # by sentinel (what `wait` answers): the process and when it started
    running: dict[int, tuple[BaseProcess, float]] = {}
    for _ in range(workers):
        proc = start()
        running[proc.sentinel] = (proc, time.monotonic())
    failed = False
    try:
        while not stopping:
            for sentinel in wait(list(running), timeout=0.5):
                _, began = running.pop(sentinel)
                if stopping:
                    break
                if time.monotonic() - began < MIN_LIFETIME_S:  # dies at start-up: it would again
                    failed = stopping = True
                    break
                proc = start()
                running[proc.sentinel] = (proc, time.monotonic())
    finally:
        reserved.close()
        procs = [proc for proc, _ in running.values()]
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
    return 1 if failed else 0
