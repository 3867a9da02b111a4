"""Helpers shared by the hardening suites (hostile input, fuzzing, races, crash, soak).

Like the REST contract tests, these suites run the server with `auth="none"` (tests/access
covers tokens and the DMP policy; forged-token tests live there). `auth_headers()` is the
one place to change if they should run authenticated: with a `data_dir` and a dev-mode
server it mints a token from that server's development issuer."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def auth_headers(
    data_dir: Path | None = None, role: str = "system", **claims: Any
) -> dict[str, str]:
    if data_dir is None or importlib.util.find_spec("fhir_server.auth") is None:
        return {}
    from fhir_server.auth.tokens import DevIssuer

    token = DevIssuer.load_or_create(data_dir).mint_token(role, f"{role}-hardening", **claims)
    return {"authorization": f"Bearer {token}"}


def is_outcome(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("resourceType") == "OperationOutcome"
        and bool(body.get("issue"))
        and all(i.get("severity") in ("error", "fatal") for i in body["issue"])
        and all(i.get("diagnostics") for i in body["issue"])
    )


def assert_refused(response: Any, *statuses: int) -> dict[str, Any]:
    """A clear refusal: a 4xx (one of `statuses` when given) carrying an OperationOutcome
    whose issues say what is wrong."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:500])
    body = response.json()
    assert is_outcome(body), body
    return body


def assert_healthy(client: Any) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["reachable"] is True, r.text


def version_count(client: Any, rtype: str) -> int:
    """How many versions of `rtype` the server holds (type history; deletions included)."""
    total, url = 0, f"/fhir/{rtype}/_history?_count=1000"
    while url:
        r = client.get(url, headers=auth_headers())
        assert r.status_code == 200, r.text
        bundle = r.json()
        total += len(bundle.get("entry") or [])
        nxt = [x["url"] for x in bundle.get("link", []) if x["relation"] == "next"]
        url = "/fhir" + nxt[0].split("/fhir", 1)[1] if nxt else None
    return total


STORED_TYPES = ("Patient", "DocumentReference", "Binary")


def snapshot(client: Any) -> dict[str, int]:
    return {t: version_count(client, t) for t in STORED_TYPES}


def document_reference(patient_id: str, unique: str, **extra: Any) -> dict[str, Any]:
    """A minimal DocumentReference the core accepts (PDSm metadata is not required here)."""
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:1.2.250.{unique}"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                        "code": "N",
                    }
                ]
            }
        ],
        "content": [{"attachment": {"contentType": "text/plain", "url": "Binary/x"}}],
    }
    doc.update(extra)
    return doc


def served_data_dir(data_dir: Path, auth: str = "dev") -> Path:
    """`data_dir` as `dmp-fhir serve --data-dir` leaves it once started (its SQLite store,
    and with auth=dev the development issuer key): the app started and stopped in process."""
    from fastapi.testclient import TestClient

    from fhir_server.api.app import create_app
    from fhir_server.config import Settings

    settings = Settings(data_dir=data_dir, auth=auth, mongodb_uri=None)
    with TestClient(create_app(settings)):
        pass
    return data_dir
