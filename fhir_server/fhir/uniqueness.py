"""Keys that at most one live resource may hold, enforced by the database (unique index):
one Patient per INS, one DocumentReference per CDA uniqueId (masterIdentifier), one MHD
SubmissionSet per uniqueId."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fhir_server.fhir.ins import INS_SYSTEMS
from fhir_server.fhir.mhd import is_submission_set, submission_set_unique_ids

# the prefixes of the unique keys (the part before the first "|")
PATIENT_KEY = "Patient.ins|"
DOCUMENT_KEY = "DocumentReference.uniqueId|"
SUBMISSION_SET_KEY = "List.submissionSet|"
CONDITION = ".condition|"
_KIND_TEXT = {
    PATIENT_KEY: "INS",
    DOCUMENT_KEY: "The document uniqueId",
    SUBMISSION_SET_KEY: "The submission set uniqueId",
}


def _patient_keys(resource: dict[str, Any]) -> list[str]:
    return [
        ins_key(ident["system"], ident.get("value"))
        for ident in resource.get("identifier") or []
        if isinstance(ident, dict) and ident.get("system") in INS_SYSTEMS
    ]


def ins_key(system: str, value: str | None) -> str:
    """The key of the one Patient that may hold this INS."""
    return f"{PATIENT_KEY}{system}|{value}"


def document_key(identifier: dict[str, Any]) -> str:
    """The key of the one DocumentReference that may hold this masterIdentifier (uniqueId)."""
    return f"{DOCUMENT_KEY}{identifier.get('system', '')}|{identifier['value']}"


def _document_keys(resource: dict[str, Any]) -> list[str]:
    master = resource.get("masterIdentifier") or {}
    if not master.get("value"):
        return []
    return [document_key(master)]


def submission_set_key(identifier: dict[str, Any]) -> str:
    return f"{SUBMISSION_SET_KEY}{identifier.get('system', '')}|{identifier['value']}"


def _list_keys(resource: dict[str, Any]) -> list[str]:
    if not is_submission_set(resource):
        return []
    return [submission_set_key(i) for i in submission_set_unique_ids(resource)]


_KEYS = {"Patient": _patient_keys, "DocumentReference": _document_keys, "List": _list_keys}


def unique_keys(rtype: str, resource: dict[str, Any] | None) -> tuple[str, ...]:
    if resource is None or rtype not in _KEYS:
        return ()
    return tuple(sorted(set(_KEYS[rtype](resource))))


def condition_key(rtype: str, query: str) -> str:
    """The key a conditional create holds, so that racing creates with the same condition
    collide in the database. The query is normalised (decoded, sorted, encoded again), so
    the same search written with or without percent-encoding holds the same key."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return f"{rtype}{CONDITION}{urlencode(pairs, quote_via=quote, safe=':|/,')}"


def unique_key_kind(key: str) -> str:
    """What a unique key is, in words, with the value the client sent (never the holder)."""
    for prefix, text in _KIND_TEXT.items():
        if key.startswith(prefix):
            value = key[len(prefix) :].rpartition("|")[2]
            return f"{text} {value!r}"
    if CONDITION in key:
        return f"The If-None-Exist condition {key.split(CONDITION, 1)[1]!r}"
    return "A unique value of this resource"
