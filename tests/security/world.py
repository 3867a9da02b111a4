"""A small DMP to attack: a victim's record with a plain, a masked and an embargoed
document, an authorised and a blocked professional, an emergency opposition, and an
attacker who treats a record of their own."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.access.test_dmp_scenario import _consent
from tests.conftest import INS_TEST_SYSTEM, VALID_INS, nir_with_key

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cda" / "ldl-ses.xml"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
FINESS = "urn:oid:1.2.250.1.71.4.2.2"
HOSPITAL = "1990000018"  # the custodian of the fixtures
OTHER_ORG = "1990000026"
AUTHOR = "810000000001"  # the author of the CDA fixtures
TREATING = "10000000001"
AUTHORISED = "10000000003"
BLOCKED = "10000000007"
ATTACKER = "10000000009"
ATTACKER_INS = nir_with_key("1790351215100")
BLOCKED_INS = nir_with_key("2790351215200")
PATCH = "application/json-patch+json"
CDA = "application/hl7-cda+xml"
UNKNOWN = "0190a0a0-0000-7000-8000-000000000000"


def cda(ins: str = VALID_INS, *, author: str = AUTHOR, title: str | None = None) -> bytes:
    """The LDL-SES fixture with a new uniqueId (and another INS, author or title)."""
    data = FIXTURE.read_bytes()
    data = data.replace(b'extension="LDL-0001"', f'extension="{uuid.uuid4()}"'.encode())
    data = data.replace(VALID_INS.encode(), ins.encode())
    data = data.replace(f'extension="{AUTHOR}"'.encode(), f'extension="{author}"'.encode())
    if title is not None:
        data = re.sub(
            rb"<title>Lettre de liaison de sortie</title>", f"<title>{title}</title>".encode(), data
        )
    return data


def sha1(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def patient(ins: str, gp: str | None, birth: str = "1979-03-28") -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": INS_TEST_SYSTEM, "value": ins}],
        "name": [{"family": "PAT-TROIS", "given": ["Dominique"]}],
        "gender": "female",
        "birthDate": birth,
    }
    if gp:
        res["generalPractitioner"] = [{"identifier": {"system": RPPS, "value": gp}}]
    return res


@dataclass
class Doc:
    id: str
    binary: str
    unique_id: str
    title: str
    data: bytes
    resource: dict[str, Any]

    @property
    def ident(self) -> str:
        """The uniqueId as an `identifier` search value (system|value)."""
        master = self.resource["masterIdentifier"]
        return f"{master['system']}|{master['value']}"

    def secrets(self) -> list[str]:
        """Stored values of this document that an actor who may not see it must never get."""
        return [
            self.id,
            self.binary,
            self.title,
            self.unique_id,
            self.resource["content"][0]["attachment"]["hash"],
        ]


@dataclass
class World:
    client: Any
    token: Callable[..., dict[str, str]]
    victim: str
    plain: Doc
    masked: Doc
    embargoed: Doc
    block: str  # the Consent blocking BLOCKED
    opposition: str  # the victim's emergency opposition (bris de glace)
    attacker_record: str
    attacker_doc: Doc
    blocked_record: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return self.headers[who]


def _file(client: Any, headers: dict[str, str], data: bytes, *labels: str) -> Doc:
    params = [("security-label", label) for label in labels]
    r = client.post(
        "/fhir/DocumentReference/$import-cda",
        content=data,
        params=params,
        headers={**headers, "content-type": CDA},
    )
    assert r.status_code == 201, r.text
    ref = r.json()
    attachment = ref["content"][0]["attachment"]
    return Doc(
        ref["id"],
        attachment["url"].rsplit("/", 1)[1],
        ref["masterIdentifier"]["value"],
        attachment["title"],
        data,
        ref,
    )


def _created(r: Any) -> str:
    assert r.status_code == 201, r.text
    return r.json()["id"]


def build_world(client: Any, token: Callable[..., dict[str, str]]) -> World:
    insurer = token("assurance-maladie")
    victim = _created(
        client.post("/fhir/Patient", json=patient(VALID_INS, TREATING), headers=insurer)
    )
    mine = _created(
        client.post("/fhir/Patient", json=patient(ATTACKER_INS, ATTACKER), headers=insurer)
    )
    theirs = _created(
        client.post("/fhir/Patient", json=patient(BLOCKED_INS, BLOCKED), headers=insurer)
    )
    author = token("practitioner", rpps=AUTHOR, organization=HOSPITAL)
    plain = _file(client, author, cda(title="Lettre ordinaire"))
    masked = _file(client, author, cda(title="Lettre masquee"), "MASQUE_PS")
    embargoed = _file(client, author, cda(title="Annonce en attente"), "INVISIBLE_PATIENT")
    holder = token("patient", patient=victim)
    for consent in (_consent(victim, "permit", AUTHORISED),):
        assert client.post("/fhir/Consent", json=consent, headers=holder).status_code == 201
    block = _created(
        client.post("/fhir/Consent", json=_consent(victim, "deny", BLOCKED), headers=holder)
    )
    opposition = _created(
        client.post("/fhir/Consent", json=_consent(victim, "deny", None, "BTG"), headers=holder)
    )
    attacker = token("practitioner", rpps=ATTACKER)
    attacker_doc = _file(client, attacker, cda(ATTACKER_INS, author=ATTACKER, title="Mon document"))
    headers = {
        "holder": holder,
        "author": author,
        "treating": token("practitioner", rpps=TREATING),
        "authorised": token("practitioner", rpps=AUTHORISED),
        "blocked": token("practitioner", rpps=BLOCKED),
        "attacker": attacker,
        "stranger": token("practitioner", rpps="10000000011"),
        "insurer": insurer,
        "other-staff": token("admin-staff", organization=OTHER_ORG),
        "other-system": token("system", organization=OTHER_ORG),
        "hospital-system": token("system", organization=HOSPITAL),
        "legal-rep": token("legal-representative", patient=victim),
        "auditor": token("auditor"),
        "glass": {
            **token("practitioner", rpps="10000000004"),
            "x-access-mode": "bris_de_glace",
            "x-access-justification": "patient inconscient",
        },
    }
    return World(
        client,
        token,
        victim,
        plain,
        masked,
        embargoed,
        block,
        opposition,
        mine,
        attacker_doc,
        theirs,
        headers,
    )


def same_answer(hidden: Any, absent: Any, hidden_id: str, absent_id: str = UNKNOWN) -> None:
    """Hidden and absent look the same: status, and body once the id asked for is set aside."""
    assert hidden.status_code == absent.status_code, (hidden.text, absent.text)
    assert hidden.text.replace(hidden_id, "<id>") == absent.text.replace(absent_id, "<id>"), (
        hidden.text,
        absent.text,
    )


def leaks(response: Any, secrets: list[str]) -> list[str]:
    text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return [s for s in secrets if s and s in text]
