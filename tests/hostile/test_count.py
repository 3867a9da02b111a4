"""Huge, odd and hostile `_count` values: capped at the server's maximum (never an
unbounded read, never a 500), or a 400 when it is not a number."""

from __future__ import annotations

import pytest

from tests.conftest import nir_with_key, patient
from tests.helpers import assert_healthy, assert_refused, auth_headers

HUGE = ["1001", "1000000", "2147483648", "9223372036854775808", "9" * 30, "9" * 5000]


@pytest.fixture
def many(client, settings):
    settings.max_count = 5  # the cap, small so the test stays cheap
    h = {"content-type": "application/fhir+json", **auth_headers()}
    for n in range(7):
        r = client.post(
            "/fhir/Patient", json=patient(nir_with_key(f"18503751230{n:02d}")), headers=h
        )
        assert r.status_code == 201, r.text
    return 7


@pytest.mark.parametrize("count", HUGE)
def test_huge_count_is_capped(client, many, count):
    for url in (f"/fhir/Patient?_count={count}", f"/fhir/Patient/_history?_count={count}"):
        r = client.get(url, headers=auth_headers())
        assert r.status_code == 200, r.text[:300]
        bundle = r.json()
        assert len(bundle["entry"]) == 5
        assert any(link["relation"] == "next" for link in bundle["link"])
    assert_healthy(client)


@pytest.mark.parametrize("count", ["-1", "1e9", "0x10", "²", "١٠", " 5", "5 ", "", "NaN", "5,5"])
def test_count_that_is_not_a_number(client, many, count):
    for url in ("/fhir/Patient", "/fhir/Patient/_history"):
        r = client.get(url, params={"_count": count}, headers=auth_headers())
        assert_refused(r, 400)


@pytest.mark.parametrize("cursor", ["9" * 19, "9" * 400, "-1", "abc", "1.5", "²"])
def test_odd_paging_cursor(client, many, cursor):
    for url in ("/fhir/Patient", "/fhir/Patient/_history"):
        r = client.get(url, params={"_cursor": cursor}, headers=auth_headers())
        if r.status_code == 200:
            assert r.json()["resourceType"] == "Bundle"
        else:
            assert_refused(r, 400)
