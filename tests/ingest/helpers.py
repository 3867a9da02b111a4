"""Shared by the filing tests: which documents to file and what each must map to."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.cda.documents import (
    ANS_ABSENT,
    ANS_EXPECTED,
    ANS_FILES,
    FIXTURES,
    PROJECT,
    Expected,
    ins_of,
)

INS = ("urn:oid:1.2.250.1.213.1.4.10", "279035121518989")  # the patient of most fixtures
CDA = {"content-type": "application/hl7-cda+xml", "accept": "application/fhir+json"}
FHIR_JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}

HOSTILE = [
    "broken-billion-laughs.xml",
    "broken-xxe-passwd.xml",
    "broken-not-well-formed.xml",
    "broken-not-cda.xml",
    "broken-ins-wrong-key.xml",
    "broken-missing-id-author-custodian.xml",
    "broken-type-not-in-j07.xml",
]
# (original, replacement): a document replacing one the server does not hold is refused
# alone (422), so replacements are filed after their original in the replacement tests
REPLACEMENTS = [("ldl-ses.xml", "ldl-ses-rplc.xml"), ("ips-fr-dlu.xml", "ips-fr-dlu-rplc.xml")]


def _replaces(path: Path) -> bool:
    return b'typeCode="RPLC"' in path.read_bytes()


def _documents() -> list[Any]:
    """Every document filed alone: the project's own, then the ANS examples when present."""
    project = [
        pytest.param(FIXTURES / n, d.expected, id=n)
        for n, d in PROJECT.items()
        if not _replaces(FIXTURES / n)
    ]
    ans = [
        pytest.param(p, ANS_EXPECTED[p.name], id=f"ans-{p.name}")
        for p in ANS_FILES
        if not _replaces(p)
    ]
    if not ans:
        ans = [
            pytest.param(None, None, id="ans-examples", marks=pytest.mark.skip(reason=ANS_ABSENT))
        ]
    return project + ans


DOCUMENTS = _documents()


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def counts(client: Any) -> dict[str, int]:
    """How many live resources of each filed type the server holds."""
    out = {}
    for rtype in ("Patient", "Binary", "List"):
        r = client.get(f"/fhir/{rtype}", params={"_count": 1000}, headers=FHIR_JSON)
        assert r.status_code == 200, r.text
        out[rtype] = len(r.json().get("entry") or [])
    out["DocumentReference"] = len(documents_of_all_patients(client))
    return out


def documents_of_all_patients(client: Any) -> list[dict[str, Any]]:
    """Every DocumentReference, patient by patient: a DocumentReference search must name
    the patient and the status (PDSm ITI-67)."""
    r = client.get("/fhir/Patient", params={"_count": 1000}, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    docs = []
    for entry in r.json().get("entry") or []:
        query = {"patient": entry["resource"]["id"], "status": "current,superseded", "_count": 1000}
        found = client.get("/fhir/DocumentReference", params=query, headers=FHIR_JSON)
        assert found.status_code == 200, found.text
        docs += [e["resource"] for e in found.json().get("entry") or []]
    return docs


def file_cda(client: Any, data: bytes, *labels: str, ctype: str = "application/hl7-cda+xml"):
    params = [("security-label", label) for label in labels]
    headers = {**CDA, "content-type": ctype}
    return client.post(
        "/fhir/DocumentReference/$import-cda", content=data, params=params, headers=headers
    )


def check_filed(client: Any, ref: dict[str, Any], data: bytes, expected: Expected) -> None:
    """Category, type, format, patient (INS -> one Patient), hash, size, bytes via ITI-68."""
    assert ref["type"]["coding"][0]["code"] == expected.type_code
    assert ref["category"][0]["coding"][0]["code"] == expected.class_code
    assert ref["content"][0]["format"]["code"] == expected.format_code
    attachment = ref["content"][0]["attachment"]
    assert attachment["size"] == len(data)
    assert attachment["hash"] == sha1_b64(data)
    subject = ref["subject"]["reference"]
    patients = client.get("/fhir/Patient", headers=FHIR_JSON).json()["entry"]
    assert len(patients) == 1
    patient = patients[0]["resource"]
    assert subject == f"Patient/{patient['id']}"
    assert {(i["system"], i["value"]) for i in patient["identifier"]} >= {ins_of(data)}
    raw = client.get(attachment["url"])  # ITI-68: the exact bytes
    assert raw.status_code == 200
    assert raw.content == data
    assert raw.headers["content-type"].startswith(attachment["contentType"])
