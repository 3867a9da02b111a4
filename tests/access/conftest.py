"""An app with the development token issuer, and tokens for every actor of the DMP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.auth.tokens import DevIssuer
from fhir_server.config import Settings

FINESS = "urn:oid:1.2.250.1.71.4.2.2"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
HOSPITAL = "1990000018"
TREATING, AUTHOR, STRANGER, EMERGENCY_DOC, SAMU = (
    "10000000001",
    "10000000002",
    "10000000003",
    "10000000004",
    "10000000005",
)


@pytest.fixture
def dmp(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir", auth="dev")
    # the store at its default place in the data dir, so the CLI finds it too
    with TestClient(create_app(settings)) as c:
        c.app_data_dir = tmp_path  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def token(dmp: TestClient) -> Callable[..., dict[str, str]]:
    issuer = DevIssuer.load_or_create(dmp.app_data_dir)  # type: ignore[attr-defined]

    def make(role: str, **claims: Any) -> dict[str, str]:
        sub = claims.pop("sub", f"{role}-{claims.get('rpps') or claims.get('patient') or 'x'}")
        jwt = issuer.mint_token(role, sub, **claims)
        return {"authorization": f"Bearer {jwt}", "content-type": "application/fhir+json"}

    return make
