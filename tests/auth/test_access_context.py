from __future__ import annotations

import pytest

from fhir_server.auth.actor import AccessMode, Actor, access_context_from_headers
from fhir_server.errors import FhirError

PS = Actor("practitioner", "dr", rpps="1")
SAMU = Actor("samu-regulator", "s", rpps="2")


def status(headers, actor=None) -> int:
    with pytest.raises(FhirError) as err:
        access_context_from_headers(headers, actor)
    return err.value.status


def test_default_is_normal() -> None:
    ctx = access_context_from_headers({})
    assert ctx.mode is AccessMode.NORMAL and not ctx.emergency


def test_break_glass_with_justification_any_header_case() -> None:
    ctx = access_context_from_headers(
        {"X-Access-Mode": "bris_de_glace", "X-Access-Justification": " coma "}, PS
    )
    assert (ctx.mode, ctx.justification, ctx.emergency) == (AccessMode.BRIS_DE_GLACE, "coma", True)


def test_refusals() -> None:
    assert status({"x-access-mode": "urgence"}) == 400
    assert status({"x-access-mode": "bris_de_glace"}) == 403
    assert status({"x-access-mode": "bris_de_glace", "x-access-justification": "   "}) == 403
    assert status({"x-access-mode": "centre_15"}, PS) == 403
    assert status({"x-access-mode": "bris_de_glace", "x-access-justification": "x"}, SAMU) == 403
    assert status({"x-access-mode": "normal", "x-access-justification": "x" * 1001}) == 400


def test_centre_15_for_samu() -> None:
    assert access_context_from_headers({"x-access-mode": "centre_15"}, SAMU).emergency
