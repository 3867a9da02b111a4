"""HL7 v3 data types of a CDA body read as FHIR R4 elements (pure, plain dicts).

`Unreadable` says why a value cannot be mapped; the caller skips that entry and reports
the reason, the document is filed anyway. `xsi:type` is a QName: its prefix resolves
against the namespaces in scope (`c:PQ` with `xmlns:c="urn:hl7-org:v3"` is PQ).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from lxml import etree

from fhir_server.cda.timestamps import ts_to_fhir
from fhir_server.terminology.body_tables import code_system, value_kind

Json = dict[str, Any]

V3 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
UCUM = "http://unitsofmeasure.org"
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class Unreadable(ValueError):
    """A CDA value that has no faithful FHIR reading (the entry is skipped)."""


@cache
def v3(name: str) -> str:
    return f"{{{V3}}}{name}"


# `iterchildren` by tag rather than `find`/`findall`: the same elements, without lxml's
# path machinery (which runs in Python) for each of a body's thousands of lookups
def child(el: etree._Element, name: str) -> etree._Element | None:
    return next(el.iterchildren(v3(name)), None)


def children(el: etree._Element, name: str) -> list[etree._Element]:
    return list(el.iterchildren(v3(name)))


def first_child(el: etree._Element, names: tuple[str, ...]) -> etree._Element | None:
    """The first child element named one of `names` (a choice of the schema), in one pass."""
    return next(el.iterchildren(*_v3s(names)), None)


@cache
def _v3s(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v3(n) for n in names)


def template_ids(el: etree._Element) -> list[str]:
    return [t.get("root") or "" for t in children(el, "templateId")]


def xsi_type(el: etree._Element) -> str | None:
    """The local name of an element's xsi:type, its prefix resolved (None when absent, or
    when the prefix names another namespace than HL7 v3)."""
    raw = el.get(XSI_TYPE)
    if not raw:
        return None
    prefix, _, local = raw.strip().rpartition(":")
    if (prefix or None) == el.prefix:
        # the element's own prefix (or default namespace) names its own namespace: no
        # need to gather every namespace in scope (`nsmap` walks up the tree)
        tag = el.tag
        namespace = tag[1 : tag.index("}")] if tag[:1] == "{" else None
    else:
        namespace = el.nsmap.get(prefix or None)
    if namespace not in (V3, None) or (prefix and namespace is None):
        return None
    return local


# -- narrative -----------------------------------------------------------------------------


def narrative_index(root: etree._Element) -> dict[str, str]:
    """Text of every element with an ID in the sections' narrative blocks, for
    originalText/reference lookups (entries are not walked: an embedded PDF would make
    this the costliest step of a filing)."""
    out: dict[str, str] = {}
    for section in root.iter(v3("section")):
        block = child(section, "text")
        if block is None:
            continue
        for el in block.iter(etree.Element):  # elements only, chosen in C
            ident = el.get("ID")
            if ident and ident not in out:
                out[ident] = " ".join("".join(el.itertext()).split())
    return out


def original_text(el: etree._Element, narrative: dict[str, str]) -> str | None:
    text_el = child(el, "originalText")
    if text_el is None:
        return None
    ref = child(text_el, "reference")
    target = (ref.get("value") or "").lstrip("#") if ref is not None else ""
    if target in narrative:
        return narrative[target] or None
    text = " ".join("".join(text_el.itertext()).split())
    return text or None


# -- codes ---------------------------------------------------------------------------------


def _coding(el: etree._Element) -> Json | None:
    code = el.get("code")
    if not code:
        return None
    out: Json = {"code": code}
    if oid := el.get("codeSystem"):
        out = {"system": code_system(oid), **out}
    if display := el.get("displayName"):
        out["display"] = display
    return out


def codeable(el: etree._Element | None, narrative: dict[str, str]) -> Json | None:
    """A CD (with its translations and original text) as a CodeableConcept; None when
    it carries neither a code nor a text."""
    if el is None:
        return None
    # most codes have no child (translation, originalText): `len` spares looking for them
    nested = len(el) > 0
    translations = children(el, "translation") if nested else []
    codings = [c for c in [_coding(el), *map(_coding, translations)] if c]
    out: Json = {"coding": codings} if codings else {}
    text = original_text(el, narrative) if nested else None
    if text:
        out["text"] = text
    elif not codings and el.get("displayName"):
        out["text"] = el.get("displayName")
    return out or None


# -- numbers and quantities ----------------------------------------------------------------


def decimal(text: str | None) -> int | float:
    """A PQ/@value as a JSON number. JSON through orjson has no decimal type, so a
    trailing zero ("1.950") is not kept; the value is."""
    if text is None or not _DECIMAL.match(text.strip()):
        raise Unreadable(f"value {text!r} is not a number")
    raw = text.strip()
    number = float(raw)
    if number != number or number in (float("inf"), float("-inf")):
        raise Unreadable(f"value {text!r} is not a finite number")
    return int(raw) if raw.lstrip("+-").isdigit() else number


def quantity(el: etree._Element) -> Json:
    out: Json = {"value": decimal(el.get("value"))}
    unit = el.get("unit")
    if unit and unit != "1":
        out.update(unit=unit, system=UCUM, code=unit)
    elif unit == "1":
        out.update(system=UCUM, code="1")
    return out


def _bound(el: etree._Element, name: str) -> Json | None:
    bound = child(el, name)
    if bound is None or bound.get("nullFlavor") or bound.get("value") is None:
        return None
    return quantity(bound)


def _exclusive(el: etree._Element, name: str) -> bool:
    bound = child(el, name)
    return (bound if bound is not None else el).get("inclusive") == "false"


def interval(el: etree._Element) -> tuple[str, Json]:
    """IVL_PQ: two bounds -> valueRange; one bound -> valueQuantity with a comparator
    (high `<=`, or `<` when not inclusive; low `>=` or `>`)."""
    low, high = _bound(el, "low"), _bound(el, "high")
    if low is not None and high is not None:
        return "valueRange", {"low": low, "high": high}
    if high is not None:
        exclusive = _exclusive(el, "high")
        return "valueQuantity", {**high, "comparator": "<" if exclusive else "<="}
    if low is not None:
        exclusive = _exclusive(el, "low")
        return "valueQuantity", {**low, "comparator": ">" if exclusive else ">="}
    raise Unreadable("interval with no bound")


def range_of(el: etree._Element) -> Json:
    """A reference range (IVL_PQ) as Observation.referenceRange low/high (either may miss)."""
    out: Json = {}
    for name in ("low", "high"):
        if (bound := _bound(el, name)) is not None:
            out[name] = {k: v for k, v in bound.items() if k != "comparator"}
    if not out:
        raise Unreadable("reference range with no bound")
    return out


# -- value[x] ------------------------------------------------------------------------------


def _concept(el: etree._Element, narrative: dict[str, str]) -> tuple[str, Any]:
    concept = codeable(el, narrative)
    if concept is None:
        raise Unreadable("coded value with neither code nor text")
    return "valueCodeableConcept", concept


def _string(el: etree._Element, narrative: dict[str, str]) -> tuple[str, Any]:
    text = " ".join("".join(el.itertext()).split())
    if not text:
        raise Unreadable("empty text value")
    return "valueString", text


def _integer(el: etree._Element, narrative: dict[str, str]) -> tuple[str, Any]:
    raw = el.get("value") or ""
    if not re.fullmatch(r"[+-]?\d+", raw.strip()):
        raise Unreadable(f"integer value {raw!r} is not an integer")
    return "valueInteger", int(raw)


def _boolean(el: etree._Element, narrative: dict[str, str]) -> tuple[str, Any]:
    raw = el.get("value")
    if raw not in ("true", "false"):
        raise Unreadable(f"boolean value {raw!r} is neither true nor false")
    return "valueBoolean", raw == "true"


def _ratio(el: etree._Element, narrative: dict[str, str]) -> tuple[str, Any]:
    num, den = child(el, "numerator"), child(el, "denominator")
    if num is None or den is None:
        raise Unreadable("ratio without numerator and denominator")
    return "valueRatio", {"numerator": quantity(num), "denominator": quantity(den)}


_VALUE_READERS: dict[str, Callable[[etree._Element, dict[str, str]], tuple[str, Any]]] = {
    "quantity": lambda el, _: ("valueQuantity", quantity(el)),
    "interval": lambda el, _: interval(el),
    "concept": _concept,
    "string": _string,
    "integer": _integer,
    "boolean": _boolean,
    "ratio": _ratio,
}


def value(el: etree._Element, narrative: dict[str, str]) -> tuple[str, Any]:
    """An observation's <value> as (value[x] element name, value)."""
    if el.get("nullFlavor"):
        raise Unreadable(f"value is {el.get('nullFlavor')} (no value)")
    kind_name = xsi_type(el)
    if kind_name is None:
        raise Unreadable(f"value has no HL7 v3 xsi:type ({el.get(XSI_TYPE)!r})")
    kind = value_kind(kind_name)
    if kind is None:
        raise Unreadable(f"value type {kind_name} is not mapped")
    return _VALUE_READERS[kind](el, narrative)


# -- times ---------------------------------------------------------------------------------


def timestamp(raw: str | None) -> str | None:
    """A TS as a FHIR date/dateTime, or None when it is not a real instant (month 20)."""
    converted = ts_to_fhir(raw)
    if converted is None:
        return None
    try:
        if "T" in converted:
            datetime.fromisoformat(converted)
        else:
            datetime.strptime(converted, {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d"}[len(converted)])
    except (ValueError, KeyError):
        return None
    return converted


def effective(el: etree._Element | None, warn: Callable[[str], None]) -> tuple[str, Any] | None:
    """effectiveTime as (effectiveDateTime | effectivePeriod, value); an invalid
    timestamp is dropped with a warning (the observation is kept)."""
    if el is None or el.get("nullFlavor"):
        return None
    if el.get("value") is not None:
        converted = timestamp(el.get("value"))
        if converted is None:
            warn(f"invalid timestamp {el.get('value')!r} left out")
            return None
        return "effectiveDateTime", converted
    period: Json = {}
    for name, key in (("low", "start"), ("high", "end")):
        bound = child(el, name)
        if bound is not None and bound.get("value"):
            converted = timestamp(bound.get("value"))
            if converted is None:
                warn(f"invalid timestamp {bound.get('value')!r} left out")
            else:
                period[key] = converted
    return ("effectivePeriod", period) if period else None
