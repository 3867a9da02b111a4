"""Live servers for the client libraries, over the store of the test's lane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_app import Live, live_app


@pytest.fixture
def open_server(tmp_path: Path, store: Any) -> Iterator[Live]:
    """Authentication off (trusted local use): the REST contract as any client sees it."""
    yield from live_app(tmp_path, store, "none")


@pytest.fixture
def dmp_server(tmp_path: Path, store: Any) -> Iterator[Live]:
    """The DMP access policy on, with the development token issuer."""
    yield from live_app(tmp_path, store, "dev")
