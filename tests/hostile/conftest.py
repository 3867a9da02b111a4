"""Fixtures of the hostile-input suite: a store seeded with resources that must never leak,
and the size limit lowered so that "too big" stays cheap to send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_server.config import Settings
from tests.conftest import FHIR_JSON, nir_with_key, patient
from tests.helpers import auth_headers, document_reference

BODY_LIMIT = 256 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        public_base_url="http://testserver/fhir",
        max_body_bytes=BODY_LIMIT,
        auth="none",
    )


@pytest.fixture
def headers() -> dict[str, str]:
    return {**FHIR_JSON, **auth_headers()}


@pytest.fixture
def seeded(client: Any, headers: dict[str, str]) -> dict[str, list[str]]:
    """Three patients with one DocumentReference each: what an injection would try to list."""
    ids: dict[str, list[str]] = {"Patient": [], "DocumentReference": []}
    for n in range(3):
        nir = nir_with_key(f"27903512151{n:02d}")
        r = client.post("/fhir/Patient", json=patient(nir, family=f"SEED-{n}"), headers=headers)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        ids["Patient"].append(pid)
        r = client.post(
            "/fhir/DocumentReference", json=document_reference(pid, f"9.{n}"), headers=headers
        )
        assert r.status_code == 201, r.text
        ids["DocumentReference"].append(r.json()["id"])
    return ids
