"""An IHE MHD ITI-65 Provide Document Bundle for a CDA file, as a sending system builds it,
printed as JSON: a transaction holding the SubmissionSet (a List), the DocumentReference
(PDSm metadata read from the CDA header; size and hash left for the server to fill), the
Binary with the CDA's bytes, and the Patient of the CDA's INS.

    python3 scripts/provide_bundle.py tests/fixtures/cda/vsm.xml > bundle.json
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from fhir_server.cda.mapping import map_cda
from fhir_server.fhir.mhd import MHD_LIST_TYPES, PDSM


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def provide_bundle(data: bytes, *, patient_in_bundle: bool = True, **doc_changes: Any) -> dict:
    """The Bundle for the CDA `data`. `patient_in_bundle=False` leaves the Patient out (the
    server finds it by the CDA's INS); `doc_changes` replace elements of the
    DocumentReference."""
    mapping = map_cda(data, binary_id="x")
    doc = copy.deepcopy(mapping.document_reference)
    urls = {"set": _urn(), "doc": _urn(), "bin": _urn(), "pat": _urn()}
    attachment = doc["content"][0]["attachment"]
    attachment["url"] = urls["bin"]
    del attachment["size"], attachment["hash"]
    if patient_in_bundle:
        doc["subject"] = {"reference": urls["pat"]}
    doc.update(doc_changes)
    submission_set = {
        "resourceType": "List",
        "meta": {"profile": [PDSM + "pdsm-submissionset-comprehensive"]},
        "identifier": [
            {
                "use": "usual",
                "system": "urn:ietf:rfc:3986",
                "value": "urn:oid:1.2.3.4." + str(uuid.uuid4().int)[:12],
            }
        ],
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": MHD_LIST_TYPES, "code": "submissionset"}]},
        "date": "2024-01-01T00:00:00+01:00",
        "entry": [{"item": {"reference": urls["doc"]}}],
    }
    if patient_in_bundle:
        submission_set["subject"] = {"reference": urls["pat"]}
    entries = [
        (urls["set"], submission_set, "List"),
        (urls["doc"], doc, "DocumentReference"),
        (
            urls["bin"],
            {
                "resourceType": "Binary",
                "contentType": "text/xml",
                "data": base64.b64encode(data).decode(),
            },
            "Binary",
        ),
    ]
    if patient_in_bundle:
        entries.append((urls["pat"], mapping.patient, "Patient"))
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [PDSM + "pdsm-comprehensive-provide-document-bundle"]},
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": res, "request": {"method": "POST", "url": rtype}}
            for url, res, rtype in entries
        ],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 scripts/provide_bundle.py CDA_FILE", file=sys.stderr)
        return 2
    print(json.dumps(provide_bundle(Path(argv[0]).read_bytes()), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
