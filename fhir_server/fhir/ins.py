"""INS (Identifiant National de Santé): the NIR key check and the INS identifier systems."""

from __future__ import annotations

INS_SYSTEMS: dict[str, str] = {
    "urn:oid:1.2.250.1.213.1.4.8": "INS-NIR",
    "urn:oid:1.2.250.1.213.1.4.9": "INS-NIA",
    "urn:oid:1.2.250.1.213.1.4.10": "INS-NIR-TEST",
    "urn:oid:1.2.250.1.213.1.4.11": "INS-NIR-DEMO",
}


def nir_key_valid(nir: str) -> bool:
    """15 characters; key = 97 - (first 13 digits mod 97), Corsica 2A/2B read as 19/18."""
    if len(nir) != 15:
        return False
    body = nir[:13].upper()
    body = body[:5] + body[5:7].replace("2A", "19").replace("2B", "18") + body[7:]
    if not (body.isdigit() and nir[13:].isdigit()):
        return False
    return 97 - int(body) % 97 == int(nir[13:])
