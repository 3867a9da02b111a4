"""Random JSON values through the FHIR body path over HTTP (create, update, transaction,
PATCH) and random query strings through search: every answer is a 2xx or a 4xx
OperationOutcome, never a 5xx. One app per test (hypothesis reuses it across examples)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.errors import FhirError
from fhir_server.search.parse import parse_query
from tests.conftest import STORE_FACTORIES
from tests.helpers import auth_headers, is_outcome

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["Patient", "DocumentReference", "Binary", "urn:uuid:1", "Patient/x", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    [
                        "resourceType",
                        "id",
                        "meta",
                        "name",
                        "identifier",
                        "extension",
                        "entry",
                        "request",
                        "resource",
                        "subject",
                        "content",
                        "status",
                        "data",
                    ]
                ),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=25,
)
resource_like = st.builds(
    lambda rtype, extra: {"resourceType": rtype, **extra},
    st.sampled_from(["Patient", "DocumentReference", "Binary", "Bundle", "X"]),
    st.dictionaries(st.text(max_size=12), json_values, max_size=5),
)
bundle_like = st.builds(
    lambda btype, entries: {"resourceType": "Bundle", "type": btype, "entry": entries},
    st.sampled_from(["transaction", "batch", "document", 1]),
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "fullUrl": st.one_of(st.text(max_size=10), json_values),
                "request": st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {
                            "method": st.sampled_from(["POST", "PUT", "GET", "DELETE", "X", 1]),
                            "url": st.one_of(
                                st.sampled_from(["Patient", "Patient/a", "Binary", "X/1", ""]),
                                st.text(max_size=15),
                            ),
                        },
                        optional={"ifMatch": json_values, "ifNoneExist": json_values},
                    ),
                ),
                "resource": st.one_of(resource_like, json_values),
            },
        ),
        max_size=3,
    ),
)


@pytest.fixture
def app_client(store_kind: str) -> Iterator[TestClient]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        app = create_app(
            Settings(data_dir=path, public_base_url="http://testserver/fhir", auth="none"),
            STORE_FACTORIES[store_kind](path),
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client


def _dumps(value) -> bytes:
    # the stdlib writes integers of any size, which the server must also survive
    return json.dumps(value).encode()


def _ok(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert is_outcome(response.json()), response.text[:500]


@SETTINGS
@given(body=st.one_of(json_values, resource_like))
def test_random_json_create_and_update(app_client, body):
    raw = _dumps(body)
    h = {**JSON, **auth_headers()}
    _ok(app_client.post("/fhir/Patient", content=raw, headers=h))
    _ok(app_client.put("/fhir/Patient/fuzz-1", content=raw, headers=h))
    _ok(app_client.post("/fhir/DocumentReference", content=raw, headers=h))


@SETTINGS
@given(body=st.one_of(bundle_like, json_values))
def test_random_bundles(app_client, body):
    _ok(app_client.post("/fhir", content=_dumps(body), headers={**JSON, **auth_headers()}))


@SETTINGS
@given(ops=json_values)
def test_random_patch_documents(app_client, ops):
    h = {"content-type": "application/json-patch+json", **auth_headers()}
    _ok(app_client.patch("/fhir/DocumentReference/fuzz-1", content=_dumps(ops), headers=h))
    _ok(app_client.patch("/fhir/DocumentReference?identifier=x", content=_dumps(ops), headers=h))


params = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(
                [
                    "_id",
                    "identifier",
                    "patient",
                    "subject",
                    "_count",
                    "_cursor",
                    "_format",
                    "identifier:not",
                    "patient[$ne]",
                    "_sort",
                    "date",
                    "",
                ]
            ),
            st.text(max_size=10),
        ),
        st.text(max_size=30),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(rtype=st.sampled_from(["Patient", "DocumentReference", "Binary"]), query=params)
def test_search_parser_only_raises_client_errors(rtype, query):
    try:
        plan = parse_query(rtype, query, default_count=50, max_count=1000)
    except FhirError as exc:
        assert 400 <= exc.status < 500 and exc.issues
    else:
        assert 0 <= plan.count <= 1000


@SETTINGS
@given(rtype=st.sampled_from(["Patient", "DocumentReference"]), query=params)
def test_random_search_over_http(app_client, rtype, query):
    _ok(app_client.get(f"/fhir/{rtype}", params=query, headers=auth_headers()))
