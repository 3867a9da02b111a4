"""Schemathesis against the server's own OpenAPI description (/openapi.json, enriched by
fhir_server.api.openapi): every operation, a bounded number of generated requests each,
and no answer may be a 5xx. Runs in-process over ASGI on the embedded store."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from fhir_server.api.app import create_app  # noqa: E402
from fhir_server.config import Settings  # noqa: E402
from fhir_server.storage.sqlite import SqliteStore  # noqa: E402
from tests.helpers import auth_headers  # noqa: E402

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))

_tmp = tempfile.TemporaryDirectory(prefix="dmp-schemathesis-")
_dir = Path(_tmp.name)
app = create_app(
    Settings(
        data_dir=_dir,
        public_base_url="http://testserver/fhir",
        max_body_bytes=1 << 20,
        auth="none",
    ),
    SqliteStore(_dir / "store.sqlite3"),
)


async def _without_lifespan(scope, receive, send):
    """Schemathesis' ASGI client runs the lifespan around every call, which would close
    the store after the first one: the store is opened once by the fixture below."""
    if scope["type"] != "lifespan":
        return await app(scope, receive, send)
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/openapi.json", _without_lifespan)


@pytest.fixture(scope="module", autouse=True)
def _lifespan():
    """Open the store once (the app's lifespan) for all generated calls, then clean up."""
    with TestClient(app):
        yield
    _tmp.cleanup()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error(case):
    case.call_and_validate(headers=auth_headers(), checks=[not_a_server_error])
