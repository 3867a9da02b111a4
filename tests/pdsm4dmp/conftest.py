"""The guide's transactions replayed with the DMP policy on, on every store."""

from __future__ import annotations

import pytest

from tests.access.conftest import dmp, token  # noqa: F401  (fixtures)
from tests.security.world import World, build_world


@pytest.fixture
def world(dmp, token) -> World:  # noqa: F811
    return build_world(dmp, token)
