"""POST [base]/DocumentReference/$import-cda: raw CDA filing, through HTTP."""

from __future__ import annotations

import threading

import pytest

from fhir_server.cda.mapping import map_cda
from fhir_server.interactions import import_cda
from fhir_server.storage.port import StoreUnavailable
from tests.ingest.helpers import (
    CDA,
    DOCUMENTS,
    FHIR_JSON,
    FIXTURES,
    HOSTILE,
    REPLACEMENTS,
    check_filed,
    counts,
    file_cda,
)

EMPTY = {"Patient": 0, "Binary": 0, "DocumentReference": 0, "List": 0}


@pytest.mark.parametrize(("path", "expected"), DOCUMENTS)
def test_files_document_with_its_metadata(client, path, expected):
    data = path.read_bytes()
    r = file_cda(client, data)
    assert r.status_code == 201, r.text
    ref = r.json()
    assert r.headers["location"].endswith(f"/DocumentReference/{ref['id']}/_history/1")
    assert ref["status"] == "current"
    check_filed(client, ref, data, expected)
    assert counts(client) == {**EMPTY, "Patient": 1, "Binary": 1, "DocumentReference": 1}


@pytest.mark.parametrize(("path", "expected"), DOCUMENTS)
def test_refiling_is_idempotent(client, path, expected):
    data = path.read_bytes()
    first = file_cda(client, data).json()
    before = counts(client)
    again = file_cda(client, data)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert "location" not in again.headers
    assert counts(client) == before


def test_documents_of_one_patient_share_the_patient(client):
    ids = {
        file_cda(client, (FIXTURES / name).read_bytes()).json()["subject"]["reference"]
        for name in ("ldl-ses.xml", "cr-bio-n3.xml", "vsm.xml")
    }
    assert len(ids) == 1
    assert counts(client) == {**EMPTY, "Patient": 1, "Binary": 3, "DocumentReference": 3}


@pytest.mark.parametrize(("original", "replacement"), REPLACEMENTS)
def test_replacement_supersedes_the_replaced_document(client, original, replacement):
    old = file_cda(client, (FIXTURES / original).read_bytes()).json()
    r = file_cda(client, (FIXTURES / replacement).read_bytes())
    assert r.status_code == 201, r.text
    new = r.json()
    [rel] = new["relatesTo"]
    assert rel["code"] == "replaces"
    assert rel["target"]["reference"] == f"DocumentReference/{old['id']}"
    assert rel["target"]["identifier"]["value"] == old["masterIdentifier"]["value"]
    replaced = client.get(f"/fhir/DocumentReference/{old['id']}", headers=FHIR_JSON).json()
    assert replaced["status"] == "superseded"
    assert replaced["meta"]["versionId"] == "2"
    assert new["status"] == "current"
    assert new["subject"] == old["subject"]


@pytest.mark.parametrize(("original", "replacement"), REPLACEMENTS)
def test_replacement_of_an_unknown_document_is_refused(client, original, replacement):
    r = file_cda(client, (FIXTURES / replacement).read_bytes())
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "not-found"
    mapped = map_cda((FIXTURES / original).read_bytes(), binary_id="b")
    replaced = mapped.document_reference["masterIdentifier"]["value"]
    assert replaced in issue["diagnostics"]
    assert counts(client) == EMPTY


def test_a_document_is_replaced_only_once(client):
    file_cda(client, (FIXTURES / "ldl-ses.xml").read_bytes())
    file_cda(client, (FIXTURES / "ldl-ses-rplc.xml").read_bytes())
    twin = (FIXTURES / "ldl-ses-rplc.xml").read_bytes().replace(b"LDL-0002", b"LDL-0003")
    r = file_cda(client, twin)
    assert r.status_code == 422
    assert "superseded" in r.json()["issue"][0]["diagnostics"]


def test_masking_labels_from_the_query(client):
    data = (FIXTURES / "cr-bio-n3.xml").read_bytes()
    r = file_cda(client, data, "MASQUE_PS", "INVISIBLE_PATIENT,INVISIBLE_REPRESENTANTS_LEGAUX")
    assert r.status_code == 201, r.text
    codes = {label["coding"][0]["code"] for label in r.json()["securityLabel"]}
    assert codes == {"N", "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}


def test_unknown_masking_label_is_refused(client):
    r = file_cda(client, (FIXTURES / "cr-bio-n3.xml").read_bytes(), "SECRET")
    assert r.status_code == 422
    assert "SECRET" in r.json()["issue"][0]["diagnostics"]
    assert counts(client) == EMPTY


@pytest.mark.parametrize("ctype", ["application/xml", "text/xml", "application/hl7-cda+xml"])
def test_accepted_media_types(client, ctype):
    r = file_cda(client, (FIXTURES / "vsm.xml").read_bytes(), ctype=ctype)
    assert r.status_code == 201


@pytest.mark.parametrize("ctype", ["application/fhir+json", "application/pdf", ""])
def test_other_media_types_are_refused(client, ctype):
    r = file_cda(client, (FIXTURES / "vsm.xml").read_bytes(), ctype=ctype)
    assert r.status_code == 415
    assert r.json()["resourceType"] == "OperationOutcome"


def test_body_limit(client, settings):
    settings.max_body_bytes = 1000
    r = file_cda(client, (FIXTURES / "vsm.xml").read_bytes())
    assert r.status_code == 413
    assert counts(client) == EMPTY


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_and_broken_documents_store_nothing(client, name):
    r = file_cda(client, (FIXTURES / name).read_bytes())
    assert r.status_code in (400, 422), r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"]
    assert "root:" not in r.text  # nothing of /etc/passwd leaks back
    assert counts(client) == EMPTY


def test_every_problem_is_listed(client):
    r = file_cda(client, (FIXTURES / "broken-missing-id-author-custodian.xml").read_bytes())
    assert r.status_code == 422
    assert len(r.json()["issue"]) >= 3


@pytest.mark.mongo_gap(
    "mongoeco fails a transaction's commit if anything at all was committed since it began "
    "(one version for the whole engine; MongoDB conflicts per document), so ten filings at "
    "once keep aborting each other until the server's reruns run out: some are answered "
    "409 or 503 (16 of 40 runs; the document is still stored once)",
    lanes=("mongo-txn",),
)
@pytest.mark.parametrize("patient_known", [False, True], ids=["new-patient", "known-patient"])
def test_same_document_filed_by_ten_threads_is_stored_once(client, patient_known):
    # with a new patient the Patient's INS key collides first; with a known one, the uniqueId
    if patient_known:
        file_cda(client, (FIXTURES / "vsm.xml").read_bytes())
    before = counts(client)
    data = (FIXTURES / "ldl-ses.xml").read_bytes()
    barrier = threading.Barrier(10)
    results: list[tuple[int, str]] = []

    def post() -> None:
        barrier.wait()
        r = file_cda(client, data)
        results.append((r.status_code, r.json().get("id", r.text)))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * 9 + [201], results
    assert len({i for _, i in results}) == 1
    after = counts(client)
    assert after["Patient"] == 1
    assert after["Binary"] == before["Binary"] + 1
    assert after["DocumentReference"] == before["DocumentReference"] + 1


def test_concurrent_documents_of_a_new_patient_share_one_patient(client):
    names = ["ldl-ses.xml", "cr-bio-n3.xml", "cr-bio-n1-pdf.xml", "vsm.xml"]
    barrier = threading.Barrier(len(names))
    statuses: list[int] = []

    def post(name: str) -> None:
        data = (FIXTURES / name).read_bytes()
        barrier.wait()
        statuses.append(file_cda(client, data).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * len(names)
    assert counts(client) == {**EMPTY, "Patient": 1, "Binary": 4, "DocumentReference": 4}


# The operation is served ahead of the framework's routing (api.fast_routes): what a client
# sees must not tell the two apart.


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_on_the_operation_file_nothing(client, method):
    data = (FIXTURES / "vsm.xml").read_bytes()
    r = client.request(method, "/fhir/DocumentReference/$import-cda", content=data, headers=CDA)
    # the generic instance routes answer: "$import-cda" is no resource id
    assert r.status_code in (400, 415), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert counts(client) == EMPTY


def test_a_refusal_comes_in_the_format_asked_for(client):
    data = (FIXTURES / "broken-missing-id-author-custodian.xml").read_bytes()
    r = client.post(
        "/fhir/DocumentReference/$import-cda",
        content=data,
        headers={"content-type": "application/hl7-cda+xml", "accept": "application/fhir+xml"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/fhir+xml")
    assert "<OperationOutcome" in r.text and '<code value="required"/>' in r.text


def test_a_store_outage_answers_503_and_stores_nothing(client, monkeypatch):
    store = client.app.state.ctx.store

    async def down(writes):
        raise StoreUnavailable("disk gone")

    monkeypatch.setattr(store, "commit", down)
    r = file_cda(client, (FIXTURES / "vsm.xml").read_bytes())
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["issue"][0]["code"] == "transient"
    monkeypatch.undo()
    assert counts(client) == EMPTY


def test_an_unexpected_failure_answers_500_without_details(client, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(import_cda, "import_cda", broken)
    r = file_cda(client, (FIXTURES / "vsm.xml").read_bytes())
    assert r.status_code == 500
    assert r.json()["issue"][0]["diagnostics"] == "Internal server error"
    assert "secret" not in r.text
