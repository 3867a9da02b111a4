"""Ids with path tricks (traversal, NUL, encoded slashes, very long, unicode, SQL) on every
instance-level interaction, in bodies and in transaction URLs: 400/404/405, nothing
stored, nothing else read."""

from __future__ import annotations

from tests.conftest import nir_with_key, patient
from tests.helpers import assert_healthy, assert_refused, auth_headers, snapshot

JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}

# as they appear in the URL path (already percent-encoded where a client would encode)
TRICKS = [
    "..%2F..%2Fetc%2Fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%5C..%5Cwindows%5Cwin.ini",
    "a%00b",
    "%00",
    "x" * 65,
    "x" * 5000,
    "%C3%A9t%C3%A9",
    "%F0%9F%A9%BA",
    "%EF%BC%8E%EF%BC%8E",  # fullwidth dots
    "%ff%fe",
    "a%20b",
    "a'%20OR%20'1'%3D'1",
    "%24ne",
    "a;b",
    "a%0D%0ASet-Cookie:x",
]


def test_instance_interactions_refuse(client, seeded):
    before = snapshot(client)
    for rid in TRICKS:
        _refused_everywhere(client, seeded, rid)
    assert snapshot(client) == before
    assert_healthy(client)


def _refused_everywhere(client, seeded, rid: str) -> None:
    h = auth_headers()
    body = patient(nir_with_key("1850375123499"), family="TRICK")
    calls = [
        client.get(f"/fhir/Patient/{rid}", headers=h),
        client.get(f"/fhir/Patient/{rid}/_history", headers=h),
        client.get(f"/fhir/Patient/{rid}/_history/1", headers=h),
        client.get(f"/fhir/Patient/{seeded['Patient'][0]}/_history/{rid}", headers=h),
        client.put(f"/fhir/Patient/{rid}", json={**body, "id": rid}, headers={**JSON, **h}),
        client.delete(f"/fhir/Patient/{rid}", headers=h),
        client.patch(
            f"/fhir/DocumentReference/{rid}",
            json=[{"op": "replace", "path": "/status", "value": "superseded"}],
            headers={"content-type": "application/json-patch+json", **h},
        ),
    ]
    for r in calls:
        assert_refused(r, 400, 404, 405)
        assert "root:" not in r.text
        assert "Set-Cookie" not in r.headers


BODY_IDS = ["../../etc/passwd", "a\u0000b", "x" * 65, "été", "a/b", "", " ", "a b"]


def test_ids_in_bodies_refused(client):
    before = snapshot(client)
    for rid in BODY_IDS:
        _body_id_refused(client, rid)
    assert snapshot(client) == before


def _body_id_refused(client, rid: str) -> None:
    h = {**JSON, **auth_headers()}
    body = {**patient(nir_with_key("1850375123488"), family="TRICK"), "id": rid}
    assert_refused(client.put("/fhir/Patient/abc", json=body, headers=h), 400)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "PUT", "url": f"Patient/{rid}"}, "resource": body},
        ],
    }
    assert_refused(client.post("/fhir", json=bundle, headers=h), 400, 404, 405)
    get = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{rid}"}}],
    }
    assert_refused(client.post("/fhir", json=get, headers=h), 400, 404)


def test_unknown_type_and_odd_segments(client):
    h = auth_headers()
    for url in (
        "/fhir/..%2FPatient",
        "/fhir/Patient%00",
        "/fhir/patient",
        "/fhir/Patient/x/_history/1/extra",
        "/fhir/%2e%2e",
    ):
        assert_refused(client.get(url, headers=h), 400, 404, 405)
