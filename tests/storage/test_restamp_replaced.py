"""A store where a document was replaced by an earlier version, whose data does not carry
its document's status: at start-up the server restamps it, once, and searches leave it
out of the default view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fhir_server.api.app import create_app
from fhir_server.auth.tokens import DevIssuer
from fhir_server.config import Settings
from fhir_server.fhir.derived import restamp
from fhir_server.interactions.versioning import make_write
from fhir_server.operations.restamp_replaced import restamp_replaced_once
from tests.conftest import patient
from tests.storage.test_reindex import on_same_data

NOW = "2026-01-01T00:00:00.000000+00:00"
TSH = {"coding": [{"system": "http://loinc.org", "code": "3016-3"}]}


def _old_filing() -> list[Any]:
    document = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "superseded",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
        "subject": {"reference": "Patient/p1"},
        "content": [{"attachment": {"contentType": "text/xml", "url": "Binary/b1"}}],
    }
    result = {"resourceType": "Observation", "id": "o1", "status": "final", "code": TSH}
    stamped = restamp(result, document)
    # as an earlier version stamped it: without the document's status
    stamped["extension"] = [e for e in stamped["extension"] if "document-status" not in e["url"]]
    return [
        make_write("create", "Patient", "p1", {**patient(), "id": "p1"}, current=None, now=NOW),
        make_write("create", "DocumentReference", "d1", document, current=None, now=NOW),
        make_write("create", "Observation", "o1", stamped, current=None, now=NOW),
    ]


def test_the_data_of_replaced_documents_leaves_the_default_view(store: Any, tmp_path: Path):
    on_same_data(store, lambda old: old.commit(_old_filing()))
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver/fhir", auth="dev")
    with TestClient(create_app(settings, store)) as client:
        issuer = DevIssuer.load_or_create(tmp_path)
        holder = {"authorization": f"Bearer {issuer.mint_token('patient', 'p', patient='p1')}"}
        query = "/fhir/Observation?patient=p1&code=http://loinc.org|3016-3"
        r = client.get(query, headers=holder)
        assert r.status_code == 200, r.text
        assert not r.json().get("entry")
        replaced = client.get(f"{query}&document-status=superseded", headers=holder).json()
        assert [e["resource"]["id"] for e in replaced["entry"]] == ["o1"]

    assert on_same_data(store, restamp_replaced_once) is None  # done once per store
