"""The app served over real HTTP, for clients that do not speak ASGI (fhirpy's aiohttp
and requests, a browser): uvicorn in a thread of the test process, on a loopback socket
bound before it starts, over the store it is given."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from fhir_server.api.app import create_app
from fhir_server.auth.tokens import DevIssuer
from fhir_server.config import Settings

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Live:
    base: str  # the FHIR base, http://127.0.0.1:<port>/fhir
    data_dir: Path

    @property
    def root(self) -> str:
        return self.base.removesuffix("/fhir")

    def bearer(self, role: str, **claims: Any) -> str:
        """A token of the development issuer this server trusts (auth="dev")."""
        sub = claims.pop("sub", f"{role}-{claims.get('rpps') or claims.get('patient') or 'x'}")
        return "Bearer " + DevIssuer.load_or_create(self.data_dir).mint_token(role, sub, **claims)


@contextmanager
def serving(settings: Settings, store: Any, sock: socket.socket) -> Iterator[None]:
    """Serve the app on `sock` until the block ends; only this thread's server stops."""
    config = uvicorn.Config(create_app(settings, store), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)


def live_app(tmp_path: Path, store: Any, auth: str) -> Iterator[Live]:
    """Serve until the generator is closed (a fixture yields from it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # the advertised base (next links, Location) is the address clients reach
        settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=port, auth=auth)
        with serving(settings, store, sock):
            yield Live(settings.base_url(), tmp_path)
