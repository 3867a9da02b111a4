"""Bodies past the size limit: refused with 413 whether the client declares the length
(Content-Length) or streams chunks without one; nothing stored, server healthy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import assert_healthy, assert_refused, auth_headers, snapshot
from tests.hostile.conftest import BODY_LIMIT

ROUTES = [
    ("POST", "/fhir/Patient", "application/fhir+json"),
    ("POST", "/fhir", "application/fhir+json"),
    ("POST", "/fhir/Binary", "application/pdf"),
    ("PUT", "/fhir/Patient/big", "application/fhir+xml"),
    ("PATCH", "/fhir/DocumentReference/big", "application/json-patch+json"),
    ("POST", "/fhir/Patient/_search", "application/x-www-form-urlencoded"),
]


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


@pytest.mark.parametrize(("method", "url", "ctype"), ROUTES)
def test_declared_length_past_limit(client, method, url, ctype):
    before = snapshot(client)
    body = b" " * (BODY_LIMIT + 1)
    r = client.request(method, url, content=body, headers={"content-type": ctype, **auth_headers()})
    outcome = assert_refused(r, 413)
    assert outcome["issue"][0]["code"] == "too-costly"
    assert snapshot(client) == before
    assert_healthy(client)


@pytest.mark.parametrize(("method", "url", "ctype"), ROUTES)
def test_streamed_without_length_past_limit(client, method, url, ctype):
    before = snapshot(client)
    r = client.request(
        method,
        url,
        content=_chunks(BODY_LIMIT * 4),
        headers={"content-type": ctype, **auth_headers()},
    )
    assert "content-length" not in r.request.headers  # really streamed, chunked
    assert_refused(r, 413)
    assert snapshot(client) == before
    assert_healthy(client)


def test_lying_content_length_is_not_trusted(client):
    """A small declared length does not let a bigger stream through."""
    before = snapshot(client)
    r = client.post(
        "/fhir/Binary",
        content=_chunks(BODY_LIMIT * 2),
        headers={"content-type": "application/pdf", **auth_headers()},
    )
    assert_refused(r, 413)
    assert snapshot(client) == before


def test_just_under_the_limit_is_accepted(client):
    r = client.post(
        "/fhir/Binary",
        content=b"%PDF" + b"0" * (BODY_LIMIT - 4),
        headers={"content-type": "application/pdf", **auth_headers()},
    )
    assert r.status_code == 201, r.text[:300]
