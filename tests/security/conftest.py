"""The attack suite runs on the embedded store and on MongoDB, with the DMP policy on."""

from __future__ import annotations

import pytest

from tests.access.conftest import dmp, token  # noqa: F401  (fixtures)
from tests.security.world import World, build_world


@pytest.fixture
def world(dmp, token) -> World:  # noqa: F811
    return build_world(dmp, token)
