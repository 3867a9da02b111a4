"""A store filed by an earlier version, whose ITI-65 documents left their Binaries naming
no document: at start-up the server ties each content to its document, once, and the
patient can retrieve it under the policy."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.auth.tokens import DevIssuer
from fhir_server.config import Settings
from fhir_server.interactions.versioning import make_write
from fhir_server.operations.tie_contents import tie_contents_once
from tests.conftest import patient
from tests.storage.test_reindex import on_same_data

NOW = "2026-01-01T00:00:00.000000+00:00"
BYTES = b"<ClinicalDocument>compte rendu</ClinicalDocument>"


def _old_filing() -> list[Any]:
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11490-0"}]},
        "subject": {"reference": "Patient/p1"},
        "content": [{"attachment": {"contentType": "text/xml", "url": "Binary/b1"}}],
    }
    binary = {  # as ITI-65 stored it: no securityContext
        "resourceType": "Binary",
        "contentType": "text/xml",
        "data": base64.b64encode(BYTES).decode(),
    }
    return [
        make_write("create", "Patient", "p1", {**patient(), "id": "p1"}, current=None, now=NOW),
        make_write("create", "Binary", "b1", binary, current=None, now=NOW),
        make_write("create", "DocumentReference", "d1", document, current=None, now=NOW),
    ]


def test_the_server_ties_old_contents_to_their_documents(store: Any, tmp_path: Path) -> None:
    on_same_data(store, lambda old: old.commit(_old_filing()))
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir", auth="dev")
    with TestClient(create_app(settings, store)) as client:
        issuer = DevIssuer.load_or_create(tmp_path)
        holder = {"authorization": f"Bearer {issuer.mint_token('patient', 'p', patient='p1')}"}
        r = client.get("/fhir/Binary/b1", headers=holder)
        assert r.status_code == 200, r.text
        assert r.content == BYTES
        stranger = issuer.mint_token("practitioner", "s", rpps="10000000011")
        hidden = client.get("/fhir/Binary/b1", headers={"authorization": f"Bearer {stranger}"})
        assert hidden.status_code == 404

    async def next_start(again: Any) -> Any:
        return await again.read("Binary", "b1"), await tie_contents_once(again)

    binary, again = on_same_data(store, next_start)
    assert binary.version == 2
    assert binary.resource["securityContext"] == {"reference": "DocumentReference/d1"}
    assert again is None  # done once per store
