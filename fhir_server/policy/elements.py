"""Who may change which element of a stored resource: one table per type (pure).

A write is judged on both states: `changes(rtype, before, after)` compares the stored
version with the new one, element by element, and returns what the change amounts to:
the policy actions to decide (each on the stored and on the new state), or a refusal
that holds for everyone, the trusted operator included:

| kind | meaning | answer |
|---|---|---|
| COMPARTMENT | the record the resource belongs to | 422: nothing moves to another record |
| IMMUTABLE | fixed once filed (PDSm Flux 03: only metadata changes; a document's content never does) | 405 |
| SERVER | set by the server only (`filed-at`, a record's closure, `Patient.active`): omitted, it carries over | 422 when a client sends another value |
| FREE | `meta` (stamped by the server) | - |
| an Action | the policy decides for the actor (`decide`) | 403 / 404 |

Tables (element -> kind; `*` = any other element; `ext <url>` = that extension):

| type | element | kind | source |
|---|---|---|---|
| DocumentReference | subject | COMPARTMENT | |
| | status | patch-metadata (current / superseded only) | PDSm Flux 03; MHD has no entered-in-error |
| | securityLabel | mask, unmask, set/lift INVISIBLE_* (`label_actions`) | dmp-rules.md, Visibility |
| | ext isArchived | patch-metadata | PDSm Flux 03 |
| | ext filed-at | SERVER | start of the INVISIBLE_PATIENT embargo |
| | * | IMMUTABLE | PDSm Flux 03 |
| Patient | identifier | IMMUTABLE | the INS is the record's key: one Patient per INS |
| | generalPractitioner | designate-treating | CSS L.162-5-3 (see `tables.CAPABILITIES`) |
| | active, ext record-closed-at, ext dmp-fermeture | SERVER | closing is `$close` / `$reopen` (R.1111-34) |
| | ext dmp-rattachement-mes | SERVER | set by `$link-mes`, the holder's activation of Mon espace santé |
| | * | write-patient | identity traits and contact details |
| Consent | patient | COMPARTMENT | a Consent speaks for one record |
| | * | write-consent | Consent rules |
| Binary | securityContext | SERVER | the content follows its document |
| | * | IMMUTABLE | a document's content never changes once filed |
| List | subject | COMPARTMENT | |
| | * | IMMUTABLE | a submission set records one submission |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fhir_server.errors import FhirError, Issue
from fhir_server.fhir.extensions import (
    CLOSED_AT_URL,
    DMP_FERMETURE_URL,
    DMP_RATTACHEMENT_MES_URL,
    FILED_AT_URL,
    IS_ARCHIVED_URL,
    LEGACY_IS_ARCHIVED_URL,
    STRUCTURED_CONTENT_URL,
)
from fhir_server.policy.decide import label_actions
from fhir_server.policy.facts import document_facts
from fhir_server.policy.model import Action


class Change(StrEnum):
    FREE = "free"
    IMMUTABLE = "immutable"
    SERVER = "server"
    COMPARTMENT = "compartment"
    LABELS = "labels"  # securityLabel: the actions `label_actions` names


Rule = Change | Action


@dataclass(frozen=True)
class ElementTable:
    elements: Mapping[str, Rule]
    default: Rule
    extensions: Mapping[str, Rule] = field(default_factory=dict)
    # allowed values of `status`, when the type restricts them
    statuses: frozenset[str] | None = None

    def extension_rule(self, url: str) -> Rule:
        return self.extensions.get(url, self.default)


TABLES: Mapping[str, ElementTable] = {
    "DocumentReference": ElementTable(
        {
            "meta": Change.FREE,
            "subject": Change.COMPARTMENT,
            "status": Action.PATCH_METADATA,
            "securityLabel": Change.LABELS,
        },
        Change.IMMUTABLE,
        {
            IS_ARCHIVED_URL: Action.PATCH_METADATA,
            LEGACY_IS_ARCHIVED_URL: Action.PATCH_METADATA,
            FILED_AT_URL: Change.SERVER,
            STRUCTURED_CONTENT_URL: Change.SERVER,
        },
        statuses=frozenset({"current", "superseded"}),
    ),
    "Patient": ElementTable(
        {
            "meta": Change.FREE,
            "identifier": Change.IMMUTABLE,
            "generalPractitioner": Action.DESIGNATE_TREATING,
            "active": Change.SERVER,
        },
        Action.WRITE_PATIENT,
        {
            CLOSED_AT_URL: Change.SERVER,
            DMP_FERMETURE_URL: Change.SERVER,
            DMP_RATTACHEMENT_MES_URL: Change.SERVER,
        },
    ),
    "Consent": ElementTable(
        {"meta": Change.FREE, "patient": Change.COMPARTMENT}, Action.WRITE_CONSENT
    ),
    "Binary": ElementTable(
        {"meta": Change.FREE, "securityContext": Change.SERVER}, Change.IMMUTABLE
    ),
    "List": ElementTable({"meta": Change.FREE, "subject": Change.COMPARTMENT}, Change.IMMUTABLE),
}
# server-set elements a client may leave out of a new version (they carry over)
SERVER_SET: Mapping[str, tuple[str, ...]] = {
    rtype: tuple(k for k, v in table.elements.items() if v is Change.SERVER)
    for rtype, table in TABLES.items()
}
SERVER_EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    rtype: tuple(u for u, v in table.extensions.items() if v is Change.SERVER)
    for rtype, table in TABLES.items()
}


def _extensions(resource: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for ext in resource.get("extension") or []:
        url = ext.get("url") if isinstance(ext, Mapping) else None
        out.setdefault(str(url), []).append(ext)
    return out


def changed_rules(
    rtype: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Rule]:
    """Each changed element (or `extension(<url>)`) and its rule."""
    table = TABLES.get(rtype)
    if table is None:
        return {}
    out: dict[str, Rule] = {}
    for key in sorted(set(before) | set(after)):
        if key in ("extension", "resourceType", "id") or before.get(key) == after.get(key):
            continue
        out[key] = table.elements.get(key, table.default)
    old, new = _extensions(before), _extensions(after)
    for url in sorted(set(old) | set(new)):
        if old.get(url) != new.get(url):
            out[f"extension({url})"] = table.extension_rule(url)
    return out


def _refusal(status: int, code: str, message: str, rtype: str, elements: list[str]) -> FhirError:
    return FhirError(
        status, [Issue(code, message, expression=tuple(f"{rtype}.{e}" for e in elements))]
    )


# refusals that hold for everyone, in the order they are tried: status, code, message
REFUSALS: Mapping[Change, tuple[int, str, str]] = {
    Change.COMPARTMENT: (
        422,
        "business-rule",
        "A {1} stays in the record it belongs to: {0} cannot change",
    ),
    Change.IMMUTABLE: (405, "not-supported", "{0} of a {1} cannot change once filed"),
    Change.SERVER: (422, "business-rule", "{0} of a {1} is set by the server only"),
}


def check_change(rtype: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Action]:
    """The policy actions a change of a stored resource amounts to, in a stable order;
    raises the refusals that hold for everyone (compartment, immutable, server-set,
    statuses). Call it only for an actor who may see `before` (its messages name the
    elements it touches)."""
    rules = changed_rules(rtype, before, after)
    by_kind: dict[Rule, list[str]] = {}
    for element, rule in rules.items():
        by_kind.setdefault(rule, []).append(element)
    for kind, (status, code, message) in REFUSALS.items():
        if touched := by_kind.get(kind):
            names = ", ".join(touched)
            hint = _mutable_hint(rtype) if kind is Change.IMMUTABLE else ""
            raise _refusal(status, code, message.format(names, rtype) + hint, rtype, touched)
    table = TABLES.get(rtype)
    statuses = table.statuses if table is not None else None
    status = after.get("status")
    if (
        statuses is not None
        and "status" in rules
        and not (isinstance(status, str) and status in statuses)
    ):
        raise _refusal(
            422,
            "business-rule",
            f"status must be one of {sorted(statuses)}",
            rtype,
            ["status"],
        )
    actions: list[Action] = []
    if Change.LABELS in by_kind:
        actions += label_actions(document_facts(before).labels, document_facts(after).labels)
    for rule in rules.values():
        if isinstance(rule, Action) and rule not in actions:
            actions.append(rule)
    return actions


def _mutable_hint(rtype: str) -> str:
    table = TABLES[rtype]
    mutable = [k for k, v in table.elements.items() if isinstance(v, Action) or v is Change.LABELS]
    mutable += ["the archive flag"] * any(isinstance(v, Action) for v in table.extensions.values())
    return f"; only {', '.join(mutable)} may change" if mutable else ""


# Elements that, set on a new resource, need more than the right to create it.
CREATION_RULES: Mapping[str, Mapping[str, Action]] = {
    "Patient": {"generalPractitioner": Action.DESIGNATE_TREATING},
}


def creation_actions(rtype: str, resource: Mapping[str, Any]) -> list[Action]:
    """What setting elements on a new resource amounts to, beyond creating it (naming the
    treating physician when opening a record)."""
    rules = CREATION_RULES.get(rtype, {})
    return [action for key, action in rules.items() if resource.get(key) not in (None, [])]


def carry_server_fields(
    rtype: str, before: Mapping[str, Any] | None, after: dict[str, Any]
) -> dict[str, Any]:
    """A new version without the server-set elements keeps those of the stored one."""
    if before is None:
        return after
    out = dict(after)
    for key in SERVER_SET.get(rtype, ()):
        if key not in out and key in before:
            out[key] = before[key]
    urls = SERVER_EXTENSIONS.get(rtype, ())
    present = {e.get("url") for e in out.get("extension") or [] if isinstance(e, Mapping)}
    kept = [
        e
        for e in before.get("extension") or []
        if isinstance(e, Mapping) and e.get("url") in urls and e.get("url") not in present
    ]
    if kept:
        out["extension"] = [*(out.get("extension") or []), *kept]
    return out
