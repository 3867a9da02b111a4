"""The API pages (Swagger UI at /docs, ReDoc at /redoc) work on a network without internet:
everything they load comes from this server; and the OpenAPI description declares the
bearer token, so Swagger UI offers to send one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.config import Settings

# what a page loads: <script src>, <link href>, and the spec URL Swagger UI fetches
_LOADED = re.compile(r"""(?:src|href)="([^"]*)"|url: '([^']*)'|spec-url="([^"]*)\"""")


def _app(tmp_path: Path, auth: str) -> TestClient:
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir", auth=auth)
    return TestClient(create_app(settings))


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[TestClient]:
    with _app(tmp_path, "dev") as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_load_only_from_this_server(dev: TestClient, page: str) -> None:
    r = dev.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "://" not in r.text  # no CDN, no font service, no online validator
    loaded = [next(g for g in m.groups() if g is not None) for m in _LOADED.finditer(r.text)]
    assert any(u.endswith(".js") for u in loaded)
    for url in loaded:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = dev.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


def test_swagger_ui_assets_are_its_scripts_and_styles(dev: TestClient) -> None:
    page = dev.get("/docs").text
    (script,) = re.findall(r'<script src="([^"]+)"', page)
    (style,) = re.findall(r'<link type="text/css" rel="stylesheet" href="([^"]+)"', page)
    js = dev.get(script)
    assert "javascript" in js.headers["content-type"]
    assert b"SwaggerUIBundle" in js.content
    assert dev.get(style).headers["content-type"].startswith("text/css")


def test_openapi_declares_the_bearer_token(dev: TestClient) -> None:
    spec = dev.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    bearer = [n for n, s in schemes.items() if (s["type"], s["scheme"]) == ("http", "bearer")]
    assert len(bearer) == 1
    required = [{bearer[0]: []}]
    paths = spec["paths"]
    assert paths["/fhir/{rtype}"]["get"]["security"] == required
    assert paths["/fhir/{rtype}"]["post"]["security"] == required
    assert paths["/fhir/{rtype}/{id}"]["get"]["security"] == required
    # open without a token, as the server answers them
    assert "security" not in paths["/fhir/metadata"]["get"]
    assert "security" not in paths["/health"]["get"]
    assert dev.get("/fhir/metadata").status_code == 200
    assert dev.get("/fhir/Patient/x").status_code == 401


def test_no_token_scheme_when_authentication_is_off(tmp_path: Path) -> None:
    with _app(tmp_path, "none") as c:
        spec = c.get("/openapi.json").json()
        assert "securitySchemes" not in spec.get("components", {})
        assert "security" not in spec["paths"]["/fhir/{rtype}"]["get"]
        assert c.get("/docs").status_code == 200
