"""An MHD DocumentReference against the CDA it carries (pure): size and SHA-1 filled or
checked, type and uniqueId agreeing with the CDA header, and, for ITI-105, the metadata a
client left out derived from the header."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from fhir_server import errors
from fhir_server.cda.mapping import (
    CdaDocument,
    build_document_reference,
    confidentiality_label,
    master_identifier,
    read_cda,
)
from fhir_server.cda.resources import patient as patient_from_cda
from fhir_server.errors import FhirError
from fhir_server.fhir import mhd
from fhir_server.fhir.ins import INS_SYSTEMS
from fhir_server.terminology import valuesets

Json = dict[str, Any]


def contradiction(element: str, given: str, in_cda: str) -> FhirError:
    return errors.unprocessable(
        f"DocumentReference.{element} {given!r} contradicts the CDA document, which has {in_cda!r}",
        f"DocumentReference.{element}",
    )


def check_digest(attachment: Json, data: bytes) -> None:
    """Fill size and SHA-1 hash when absent; refuse them when they do not match the bytes."""
    actual = {"size": len(data), "hash": base64.b64encode(hashlib.sha1(data).digest()).decode()}
    for key, value in actual.items():
        given = attachment.setdefault(key, value)
        if given != value:
            raise errors.unprocessable(
                f"attachment.{key} {given!r} does not match the Binary, whose {key} is {value!r}",
                f"DocumentReference.content.attachment.{key}",
            )


def cda_of(binary: Json, data: bytes, max_bytes: int) -> CdaDocument | None:
    media = str(binary.get("contentType") or "").split(";")[0].strip().lower()
    if media not in mhd.CDA_MEDIA_TYPES or b"ClinicalDocument" not in data:
        return None
    return read_cda(data, max_bytes=max_bytes)


def check_type(doc: Json, cda: CdaDocument) -> None:
    code = cda.header.code
    assert code is not None  # read_cda refuses a document without one
    concept = valuesets.type_concept(code.system or "", code.code)
    assert concept is not None  # read_cda refuses a type outside J07
    expected = concept.coding()
    codings = (doc.get("type") or {}).get("coding") or []
    if not codings:
        doc["type"] = {"coding": [expected]}
        return
    if not any(
        c.get("code") == expected["code"]
        and c.get("system", expected["system"]) == expected["system"]
        for c in codings
    ):
        given = ", ".join(f"{c.get('system', '')}|{c.get('code')}" for c in codings)
        raise contradiction("type", given, f"{expected['system']}|{expected['code']}")


def _comparable_unique_id(unique_id: str) -> str:
    """A UUID root is compared without regard to case (RFC 4122): the CDA may write it in
    upper case, while its FHIR form (urn:uuid:) is lower case."""
    root, caret, extension = unique_id.partition("^")
    return (root.lower() if "-" in root else root) + caret + extension


def check_master_identifier(doc: Json, cda: CdaDocument) -> None:
    given = doc.get("masterIdentifier")
    if not given:
        assert cda.header.id is not None
        doc["masterIdentifier"] = master_identifier(cda.header.id)
        return
    given_id = mhd.xds_unique_id(given)
    if _comparable_unique_id(given_id) != _comparable_unique_id(cda.unique_id):
        raise contradiction("masterIdentifier", given_id, cda.unique_id)


# ITI-105: elements derived from the CDA only together, since they point at each other
CONTAINED_GROUP = ("contained", "author", "authenticator", "custodian")


def derive_metadata(doc: Json, cda: CdaDocument) -> None:
    """ITI-105: metadata the client left out, taken from the CDA header."""
    record_target = cda.header.record_target
    assert record_target is not None
    derived = build_document_reference(
        cda,
        labels=confidentiality_label(cda.header),
        binary_id="placeholder",
        patient_id=None,
        source_patient=patient_from_cda(record_target, "source-patient"),
    )
    with_contained = not any(k in doc for k in CONTAINED_GROUP)
    for key, value in derived.items():
        if key in CONTAINED_GROUP and not with_contained:
            continue
        if key not in ("content", "context", "subject"):
            doc.setdefault(key, value)
    content = doc["content"][0]
    content.setdefault("format", derived["content"][0]["format"])
    for key, value in derived["content"][0]["attachment"].items():
        if key != "url":
            content["attachment"].setdefault(key, value)
    context = doc.setdefault("context", {})
    for key, value in derived["context"].items():
        if key != "sourcePatientInfo" or with_contained:
            context.setdefault(key, value)


def ins_of(resource: Json) -> set[tuple[str, str]]:
    return {
        (i["system"], str(i.get("value")))
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and i.get("system") in INS_SYSTEMS
    }


def attachment_hash(doc: Json) -> str | None:
    attachment = ((doc.get("content") or [{}])[0] or {}).get("attachment") or {}
    value = attachment.get("hash")
    return value if isinstance(value, str) else None
