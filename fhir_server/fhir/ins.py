"""INS (Identifiant National de Santé): the OIDs that carry it and the NIR key check.

The NIR key is 97 - (first 13 digits mod 97), on two digits. Corsican départements 2A and
2B are counted as 19 and 18 for that computation only.
"""

from __future__ import annotations

from dataclasses import dataclass

FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"


@dataclass(frozen=True, slots=True)
class InsKind:
    oid: str
    type_code: str  # FR Core v2-0203 identifier type
    display: str
    test: bool  # test / demo identities must never reach production records


INS_KINDS: dict[str, InsKind] = {
    k.oid: k
    for k in (
        InsKind("1.2.250.1.213.1.4.8", "INS-NIR", "NIR définitif", False),
        InsKind("1.2.250.1.213.1.4.9", "INS-NIA", "NIA", False),
        InsKind("1.2.250.1.213.1.4.10", "INS-NIR-TEST", "NIR de test", True),
        InsKind("1.2.250.1.213.1.4.11", "INS-NIR-DEMO", "NIR de démonstration", True),
    )
}

_CORSICA = {"2A": "19", "2B": "18"}


def ins_system(oid: str) -> str:
    """FHIR Identifier.system of an INS carried under `oid`."""
    return f"urn:oid:{oid}"


def is_ins_oid(oid: str | None) -> bool:
    return oid in INS_KINDS


def nir_key_valid(nir: str) -> bool:
    """True when `nir` is 15 characters (13 + 2-digit key) and its key matches."""
    if len(nir) != 15:
        return False
    body, key = nir[:13], nir[13:]
    body = body[:5] + _CORSICA.get(body[5:7], body[5:7]) + body[7:]
    if not (body.isdigit() and key.isdigit() and body.isascii() and key.isascii()):
        return False
    return int(key) == 97 - int(body) % 97


def nir_expected_key(nir: str) -> str | None:
    """The two-digit key the first 13 characters call for, or None if they are not a NIR body."""
    body = nir[:13]
    body = body[:5] + _CORSICA.get(body[5:7], body[5:7]) + body[7:]
    if len(body) != 13 or not (body.isascii() and body.isdigit()):
        return None
    return f"{97 - int(body) % 97:02d}"


def nir_problem(nir: str) -> str | None:
    """What is wrong with `nir`, as a phrase to follow it in a message; None if it is valid."""
    if len(nir) != 15:
        return "must be 15 characters long (13 + key)"
    if nir_key_valid(nir):
        return None
    expected = nir_expected_key(nir)
    if expected is None:
        return "is not a NIR: 13 digits (2A or 2B for Corsica) and a 2-digit key are expected"
    return f"has an invalid NIR key '{nir[13:]}' (expected {expected})"


# FHIR Identifier.system -> FR Core identifier type, for resources posted as FHIR
INS_SYSTEMS: dict[str, str] = {ins_system(k.oid): k.type_code for k in INS_KINDS.values()}
