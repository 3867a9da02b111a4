"""Test fixtures. The HTTP and store contract tests run once per store adapter listed in
STORE_FACTORIES; the MongoDB adapter adds itself there."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning, module="fastapi.testclient")

from fastapi.testclient import TestClient  # noqa: E402

from fhir_server.api.app import create_app  # noqa: E402
from fhir_server.config import Settings  # noqa: E402
from fhir_server.storage.sqlite import SqliteStore  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

VALID_INS = "279035121518989"  # ANS test NIR, key 89
INS_TEST_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"


def sqlite_factory(tmp_path: Path) -> Any:
    return SqliteStore(tmp_path / "store.sqlite3")


# name -> (factory(tmp_path) -> Store); extended by the MongoDB lane
STORE_FACTORIES: dict[str, Callable[[Path], Any]] = {"sqlite": sqlite_factory}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        metafunc.parametrize("store_kind", list(STORE_FACTORIES))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # the REST contract is tested with authentication off; tests/access covers the policy
    return Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir", auth="none")


@pytest.fixture
def store(store_kind: str, tmp_path: Path) -> Any:
    return STORE_FACTORIES[store_kind](tmp_path)


@pytest.fixture
def client(settings: Settings, store: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store)) as c:
        yield c


FHIR_JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


def patient(nir: str = VALID_INS, family: str = "PAT-TROIS", **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": INS_TEST_SYSTEM, "value": nir}],
        "name": [{"family": family, "given": ["Dominique"]}],
        "gender": "female",
        "birthDate": "1979-03-28",
    }
    res.update(extra)
    return res


def nir_with_key(first13: str) -> str:
    return first13 + f"{97 - int(first13) % 97:02d}"
