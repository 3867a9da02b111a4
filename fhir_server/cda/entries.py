"""Reading the parts every patient-summary entry shares: its clinical statement, the
observations it relates, its ids and its actors (pure)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_server.cda.datatypes import child, children, template_ids
from fhir_server.cda.lab_participants import author_extension
from fhir_server.terminology.body_tables import lab_templates, summary_tables

Json = dict[str, Any]


def statement(entry: etree._Element) -> etree._Element | None:
    """The clinical statement an <entry> holds (act, substanceAdministration, procedure,
    organizer, observation), comments left aside."""
    return next((c for c in entry if isinstance(c.tag, str)), None)


def related(
    el: etree._Element, templates: frozenset[str], type_code: str | None = None
) -> list[etree._Element]:
    """The statements under `el`'s entryRelationships that carry one of `templates`
    (of that typeCode when one is given)."""
    return [
        inner
        for rel in children(el, "entryRelationship")
        if type_code is None or rel.get("typeCode") == type_code
        for inner in rel
        if isinstance(inner.tag, str) and set(template_ids(inner)) & templates
    ]


def comment_text(act: etree._Element, narrative: dict[str, str]) -> str | None:
    """A comment act's text: the narrative it references, else its own text."""
    text_el = child(act, "text")
    if text_el is None:
        return None
    ref = child(text_el, "reference")
    if ref is not None and (target := (ref.get("value") or "").lstrip("#")):
        return narrative.get(target)
    return " ".join("".join(text_el.itertext()).split()) or None


def notes(
    statements: list[etree._Element], narrative: dict[str, str], templates: frozenset[str]
) -> list[Json]:
    """The comment acts related to these statements, as FHIR Annotations (`note`)."""
    return [
        {"text": text}
        for el in statements
        for act in related(el, templates)
        if (text := comment_text(act, narrative))
    ]


def value_code(obs: etree._Element) -> str | None:
    value = child(obs, "value")
    return value.get("code") if value is not None else None


def ii_key(el: etree._Element) -> str | None:
    """The statement's id as one string (root, and extension when there is one)."""
    ident = child(el, "id")
    if ident is None or not ident.get("root"):
        return None
    root = str(ident.get("root")).lower()
    return f"{root}^{ident.get('extension')}" if ident.get("extension") else root


def text_of(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    text = " ".join("".join(el.itertext()).split())
    return text or None


def actor(assigned: etree._Element | None) -> Json | None:
    """An assignedEntity / assignedAuthor as a Reference by identifier (root and
    extension, as the header's actors) and display name; None when it names no one."""
    if assigned is None:
        return None
    out: Json = {}
    for ident in children(assigned, "id"):
        if ident.get("root") and ident.get("extension") and not ident.get("nullFlavor"):
            out["identifier"] = {
                "system": f"urn:oid:{ident.get('root')}",
                "value": ident.get("extension"),
            }
            break
    person = child(assigned, "assignedPerson")
    name = child(person, "name") if person is not None else None
    if name is not None:
        parts = [text_of(p) for p in (*children(name, "given"), *children(name, "family"))]
        if display := " ".join(p for p in parts if p):
            out["display"] = display
    return out or None


def author_and_notes(
    res: Json, statements: list[etree._Element], narrative: dict[str, str]
) -> Json | None:
    """Put on `res` the author of the first of `statements` that names one (the FR
    Document Core actor extension, `type` AUT) and the comments of them all (`note`);
    returns the author extension."""
    url = lab_templates().actor_extension
    author = next((a for el in statements if (a := author_extension(el, url))), None)
    if author is not None:
        res["extension"] = [*res.get("extension", []), author]
    if found := notes(statements, narrative, summary_tables().comment_acts):
        res["note"] = found
    return author
