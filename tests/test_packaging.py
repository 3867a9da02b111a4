"""The wheel carries the data the server reads at run time: the mapping tables of
`mappings/` and the profile data of `profiles/`, as `fhir_server.mappings` and
`fhir_server.profiles`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.skip(f"the wheel could not be built here (no package index?): {built.stderr[-300:]}")
    (wheel,) = out.glob("*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


@pytest.mark.parametrize("folder", ["mappings", "profiles"])
def test_every_data_file_ships_in_the_wheel(wheel_names: set[str], folder: str) -> None:
    files = sorted(p.name for p in (ROOT / folder).glob("*.json"))
    assert files, f"{folder}/ holds no data"
    missing = [f for f in files if f"fhir_server/{folder}/{f}" not in wheel_names]
    assert not missing


def test_the_installed_package_reads_the_mapping_tables() -> None:
    from importlib import resources

    shipped = {p.name for p in resources.files("fhir_server.mappings").iterdir()}
    assert {p.name for p in (ROOT / "mappings").glob("*.json")} <= shipped
