"""AuditEvent builder (R4), in the IHE BALP "RESTful activity" / MHD style.

One AuditEvent per decision, permit or deny (R.1111-31): who (agent, requestor), when
(recorded), what (entity: the patient and the resource), how (purposeOfEvent = TRE_R248
access mode, justification in `entity.detail`), outcome (0 / 4 / 8, outcomeDesc = the
policy rule that decided). Pure: the caller supplies the instant, the addresses and the id.

| element | value |
|---|---|
| type | audit-event-type `rest` |
| subtype | restful-interaction code (read, vread, search-type, create, update, patch, delete, history-instance, history-type) + `urn:ihe:event-type-code` ITI-65 / ITI-67 / ITI-68 when the request is that MHD transaction |
| action | C create, R read/vread/history, U update/patch, D delete, E search (BALP "Query") |
| outcome | 0 success (2xx/3xx), 4 minor failure (4xx: refused, hidden, invalid), 8 serious failure (5xx) |
| agent[0] | the user: `who` = RPPS identifier, `Patient/<id>` for the holder, subject id otherwise; role = DMP role (+ G15 profession); requestor; network address |
| agent[1] | the user's establishment (FINESS), when the token names one |
| agent[n] | this server (DCM 110152 Destination Role ID), not requestor |
| source | observer = this server, type 4 application server |
| entity | `Patient/<id>` (type 1 person, role 1 patient); the resource (type 2, role 4) or the search query (role 24, base64) |
| purposeOfEvent | TRE_R248 access mode; also on the user agent's purposeOfUse |
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.auth.actor import RPPS_SYSTEM, AccessContext, AccessMode, Actor, Role

ACCESS_MODE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R248-ModeAcces/FHIR/TRE-R248-ModeAcces"
ACCESS_MODE_DISPLAY: Mapping[AccessMode, str] = {
    AccessMode.NORMAL: "Accès normal",
    AccessMode.BRIS_DE_GLACE: "Accès en bris de glace",
    AccessMode.CENTRE_15: "Accès par un centre de régulation médicale",
}
FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
G15_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
# Our token roles are not in a published code system: a local one, documented here.
ROLE_SYSTEM = "https://dmp-fhir.invalid/CodeSystem/dmp-role"
SUBJECT_SYSTEM = "https://dmp-fhir.invalid/sid/token-subject"

AUDIT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
IHE_EVENT_SYSTEM = "urn:ihe:event-type-code"
IHE_TRANSACTIONS = {
    "ITI-65": "Provide Document Bundle",
    "ITI-66": "Find Document Lists",
    "ITI-67": "Find Document References",
    "ITI-68": "Retrieve Document",
    "ITI-105": "Simplified Publish",
}
ACTION_OF_INTERACTION = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "search-type": "E",
    "search-system": "E",
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "operation": "E",
}

ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SECURITY_ROLE_TYPE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"


@dataclass(frozen=True)
class ServerIdentity:
    """This server as an audit participant: a name and its base URL."""

    name: str = "dmp-fhir"
    base_url: str = "urn:dmp-fhir:server"
    address: str | None = None

    def reference(self) -> dict[str, Any]:
        return {
            "identifier": {"system": "urn:ietf:rfc:3986", "value": self.base_url},
            "display": self.name,
        }


def outcome_of(status: int) -> str:
    """HTTP status -> AuditEvent.outcome: 0 success, 4 minor (client) failure, 8 serious."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _who(actor: Actor) -> dict[str, Any]:
    if actor.rpps:
        return {"identifier": {"system": RPPS_SYSTEM, "value": actor.rpps}}
    if actor.role == Role.PATIENT and actor.patient:
        return {"reference": f"Patient/{actor.patient}"}
    return {"identifier": {"system": SUBJECT_SYSTEM, "value": actor.sub}}


def _purpose(access: AccessContext) -> list[dict[str, Any]]:
    code = access.mode
    coding = {
        "system": ACCESS_MODE_SYSTEM,
        "code": code.value,
        "display": ACCESS_MODE_DISPLAY[code],
    }
    return [{"coding": [coding]}]


def _user_agent(actor: Actor | None, access: AccessContext, client: str | None) -> dict[str, Any]:
    human = actor is None or actor.role != Role.SYSTEM
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {"system": SECURITY_ROLE_TYPE, "code": "humanuser", "display": "human user"}
                if human
                else {"system": DCM, "code": "110150", "display": "Application"}
            ]
        },
        "requestor": True,
        "purposeOfUse": _purpose(access),
    }
    if actor is None:
        agent["who"] = {"display": "unauthenticated client"}
    else:
        roles = [{"coding": [{"system": ROLE_SYSTEM, "code": actor.role}]}]
        if actor.rpps:
            roles.append({"coding": [{"system": G15_SYSTEM, "code": actor.profession}]})
        agent.update(who=_who(actor), altId=actor.sub, role=roles)
    if client:
        agent["network"] = {"address": client, "type": "2"}  # 2 = IP address
    return agent


def _organization_agent(actor: Actor | None) -> list[dict[str, Any]]:
    if actor is None or not actor.organization:
        return []
    return [
        {
            "type": {
                "coding": [{"system": ROLE_CLASS, "code": "PROV", "display": "healthcare provider"}]
            },
            "who": {"identifier": {"system": FINESS_SYSTEM, "value": actor.organization}},
            "requestor": False,
        }
    ]


def _server_agent(server: ServerIdentity) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": server.reference(),
        "requestor": False,
    }
    if server.address:
        agent["network"] = {"address": server.address, "type": "2"}
    return agent


def _entities(
    patient_id: str | None,
    resource: str | None,
    query: str | None,
    access: AccessContext,
) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{patient_id}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if resource:
        entities.append(
            {
                "what": {"reference": resource},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    if query is not None:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(query.encode()).decode(),
            }
        )
    if access.justification:
        detail = {"type": "justification", "valueString": access.justification}
        if not entities:
            entities.append({})
        entities[0].setdefault("detail", []).append(detail)
    return entities


def build_audit_event(
    *,
    interaction: str,
    recorded: datetime,
    status: int,
    rule: str,
    reason: str = "",
    actor: Actor | None,
    access: AccessContext | None = None,
    patient_id: str | None = None,
    resource: str | None = None,
    query: str | None = None,
    transaction: str | None = None,
    client_address: str | None = None,
    server: ServerIdentity | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An R4 AuditEvent (dict) for one decided request.

    interaction: restful-interaction code (`ACTION_OF_INTERACTION` keys);
    status/rule/reason: the HTTP status answered and the policy Decision's rule/reason;
    actor: None when authentication failed (401); resource: "Type/id" or
    "Type/id/_history/n"; query: the search query string (ITI-67), base64 in the entity;
    transaction: "ITI-65" / "ITI-67" / "ITI-68" when the request is that MHD transaction;
    recorded: timezone-aware instant; event_id: assign it before chaining (`chain.link`).
    """
    if interaction not in ACTION_OF_INTERACTION:
        raise ValueError(f"unknown interaction {interaction!r}")
    if recorded.tzinfo is None:
        raise ValueError("recorded must be timezone-aware")
    access = access or AccessContext()
    server = server or ServerIdentity()
    subtype = [{"system": INTERACTION_SYSTEM, "code": interaction}]
    if transaction is not None:
        subtype.append(
            {
                "system": IHE_EVENT_SYSTEM,
                "code": transaction,
                "display": IHE_TRANSACTIONS[transaction],
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": AUDIT_TYPE,
        "subtype": subtype,
        "action": ACTION_OF_INTERACTION[interaction],
        "recorded": recorded.isoformat(timespec="milliseconds"),
        "outcome": outcome_of(status),
        "outcomeDesc": f"{rule}: {reason}" if reason else rule,
        "purposeOfEvent": _purpose(access),
        "agent": [
            _user_agent(actor, access, client_address),
            *_organization_agent(actor),
            _server_agent(server),
        ],
        "source": {
            "observer": server.reference(),
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if event_id is not None:
        event = {"resourceType": "AuditEvent", "id": event_id, **event}
    entities = _entities(patient_id, resource, query, access)
    if entities:
        event["entity"] = entities
    return event
