"""The patient's Consent resources, reduced to the provisions the policy matches.

Shapes (dmp-rules.md, "FHIR encoding"): category LOINC 59284-0; `provision.type` permit or
deny; `provision.actor[].reference.identifier` an RPPS (urn:oid:1.2.250.1.71.4.2.1) or a
FINESS (urn:oid:1.2.250.1.71.4.2.2); `provision.purpose` v3-ActReason BTG (break-glass) or
ETREAT (centre 15). A Consent whose status is not `active` has no effect.

Matching, one rule for every shape: a provision applies to a request when its actors are
empty or include one of the actor's identifiers, AND its purposes are empty or include the
request's purpose (normal -> TREAT, bris_de_glace -> BTG, centre_15 -> ETREAT). A provision
with neither actor nor purpose is the record-level opinion (open / opposed), never an
access rule.

| shape | effect |
|---|---|
| deny + actor | block: 403 for that actor, every action, every mode (beats every permit) |
| deny + purpose, no actor | emergency opt-out for that mode |
| deny + actor + purpose | block of that actor in that mode only |
| permit + actor | authorisation (for reads; feeding is not gated, L.1111-15) |
| permit without actor | no access effect (**decision**: nobody is authorised "in general") |
| deny/permit, neither | record opposed / open (`record_opinion`) |

**decisions** on malformed input, chosen to fail closed: an actor entry without a usable
RPPS/FINESS identifier is ignored, and a provision left with no usable actor is dropped
(it must not turn into an "everyone" rule); a deny whose period cannot be parsed still
applies, a permit whose period cannot be parsed does not; nested `provision.provision`
is not read (the DMP shapes are flat).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fhir_server.auth.actor import FINESS_SYSTEM, RPPS_SYSTEM, AccessMode, Actor

LOINC_SYSTEM = "http://loinc.org"
PRIVACY_CATEGORY = "59284-0"
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACTOR_SYSTEMS = frozenset({RPPS_SYSTEM, FINESS_SYSTEM})

PURPOSE_BY_MODE: Mapping[AccessMode, str] = {
    AccessMode.NORMAL: "TREAT",
    AccessMode.BRIS_DE_GLACE: "BTG",
    AccessMode.CENTRE_15: "ETREAT",
}

ActorId = tuple[str, str]  # (identifier system, value)


def actor_ids(actor: Actor) -> frozenset[ActorId]:
    """The identifiers a Consent may name this actor by: own RPPS, organisation FINESS."""
    ids = set()
    if actor.rpps:
        ids.add((RPPS_SYSTEM, actor.rpps))
    if actor.organization:
        ids.add((FINESS_SYSTEM, actor.organization))
    return frozenset(ids)


@dataclass(frozen=True)
class Provision:
    type: Literal["permit", "deny"]
    actors: frozenset[ActorId]
    purposes: frozenset[str]
    consent_id: str | None = None
    recorded: str = ""  # Consent.dateTime, to order record-level opinions

    @property
    def record_level(self) -> bool:
        return not self.actors and not self.purposes

    def applies(self, ids: frozenset[ActorId], purpose: str) -> bool:
        if self.record_level:
            return False
        actor_ok = not self.actors or bool(self.actors & ids)
        purpose_ok = not self.purposes or purpose in self.purposes
        return actor_ok and purpose_ok


@dataclass(frozen=True)
class ConsentFacts:
    provisions: tuple[Provision, ...] = ()

    def block(self, ids: frozenset[ActorId], purpose: str) -> Provision | None:
        """A deny naming this actor (an establishment's FINESS blocks all its staff)."""
        return next(
            (
                p
                for p in self.provisions
                if p.type == "deny" and p.actors and p.applies(ids, purpose)
            ),
            None,
        )

    def emergency_opposition(self, purpose: str) -> Provision | None:
        """A deny for this purpose that names nobody: the L.1111-17 opt-out."""
        return next(
            (
                p
                for p in self.provisions
                if p.type == "deny" and not p.actors and purpose in p.purposes
            ),
            None,
        )

    def authorisation(self, ids: frozenset[ActorId], purpose: str) -> Provision | None:
        return next(
            (
                p
                for p in self.provisions
                if p.type == "permit" and p.actors and p.applies(ids, purpose)
            ),
            None,
        )

    def record_opinion(self) -> Literal["open", "opposed"] | None:
        """The latest record-level Consent: permit = open, deny = opposed."""
        levels = [p for p in self.provisions if p.record_level]
        if not levels:
            return None
        latest = max(levels, key=lambda p: p.recorded)
        return "open" if latest.type == "permit" else "opposed"


def _codings(concepts: Any) -> Iterable[Mapping[str, Any]]:
    for concept in concepts if isinstance(concepts, list) else []:
        if isinstance(concept, Mapping):
            yield from (c for c in concept.get("coding") or [] if isinstance(c, Mapping))


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    if len(text) == 10:  # a date: the whole day counts, start at midnight UTC
        text += "T00:00:00+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("instant without a time zone")
    return parsed


def _in_period(provision: Mapping[str, Any], kind: str, now: datetime) -> bool:
    period = provision.get("period")
    if not isinstance(period, Mapping):
        return True
    try:
        start, end = _instant(period.get("start")), _instant(period.get("end"))
    except ValueError:
        return kind == "deny"  # fail closed
    return (start is None or start <= now) and (end is None or now <= end)


def _actors(provision: Mapping[str, Any]) -> tuple[frozenset[ActorId], bool]:
    """(usable identifiers, whether actor entries were present at all)."""
    entries = provision.get("actor") or []
    ids = set()
    for entry in entries if isinstance(entries, list) else []:
        ident = ((entry or {}).get("reference") or {}).get("identifier") or {}
        system, value = ident.get("system"), ident.get("value")
        if system in ACTOR_SYSTEMS and isinstance(value, str) and value:
            ids.add((system, value))
    return frozenset(ids), bool(entries)


def _provision(consent: Mapping[str, Any], patient_id: str, now: datetime) -> Provision | None:
    if consent.get("resourceType") != "Consent" or consent.get("status") != "active":
        return None
    if not any(
        c.get("system") == LOINC_SYSTEM and c.get("code") == PRIVACY_CATEGORY
        for c in _codings(consent.get("category"))
    ):
        return None
    ref = (consent.get("patient") or {}).get("reference")
    if ref is not None and ref != f"Patient/{patient_id}":
        return None  # another patient's consent has no say on this record
    prov = consent.get("provision") or {}
    kind = prov.get("type")
    if kind not in ("permit", "deny") or not _in_period(prov, kind, now):
        return None
    ids, had_actors = _actors(prov)
    if had_actors and not ids:
        return None
    purposes = frozenset(
        c["code"]
        for c in prov.get("purpose") or []
        if isinstance(c, Mapping) and c.get("system") == ACT_REASON_SYSTEM and c.get("code")
    )
    return Provision(kind, ids, purposes, consent.get("id"), str(consent.get("dateTime") or ""))


def parse_consents(
    consents: Iterable[Mapping[str, Any]], patient_id: str, now: datetime
) -> ConsentFacts:
    provisions = (_provision(c, patient_id, now) for c in consents)
    return ConsentFacts(tuple(p for p in provisions if p is not None))
