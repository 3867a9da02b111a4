"""Index terms extracted from a resource on write (pure, and fast: plain dict walking
along the paths of `search.params`, no fhir.resources models on this path).

Encodings (both stores store them as they are):
- token: one value per code, the code before its system (`search.tokens`); identifiers
  likewise with their value; booleans "true"/"false"; `code` elements and URIs with no
  system (theirs is implicit).
- reference: "Type/id" (base URL and _history stripped). With `by_identifier`, the
  reference's identifier (or the identifier of the contained resource it points at) is
  also a token of "<param>:identifier".
- string: folded (NFKD, combining marks dropped, casefolded) under the param, and verbatim
  under "<param>:exact".
- date: inclusive (low, high) UTC instants at the precision of the value (`search.dates`).
- quantity: inclusive (low, high) numbers in the same range index, under the names
  `search.quantities` gives (number alone, by unit code, by system and code).
- patient: the compartment owner (`fhir.compartment.patient_of`, as the policy reads it);
  sort: per sortable date param the smallest low ("" when none).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

from fhir_server.fhir.compartment import patient_of
from fhir_server.records import IndexTerms
from fhir_server.search.dates import parse_range, period_range
from fhir_server.search.params import SearchParam, params_of
from fhir_server.search.quantities import index_entries
from fhir_server.search.tokens import indexable, token_value

_SEGMENT = re.compile(r"ext\([^)]*\)|[^.]+")


@cache
def _segments(path: str) -> tuple[str, ...]:
    return tuple(_SEGMENT.findall(path))


def walk(node: Any, segments: tuple[str, ...]) -> list[Any]:
    """Every value at the end of a path; lists flatten at each step (FHIR never nests
    lists). Breadth-first over plain lists: this runs for every param on every write."""
    current = node if isinstance(node, list) else [node]
    for seg in segments:
        nxt: list[Any] = []
        if seg[:4] == "ext(":
            url = seg[4:-1]
            for n in current:
                if isinstance(n, dict):
                    nxt += [
                        e
                        for e in n.get("extension") or ()
                        if isinstance(e, dict) and e.get("url") == url
                    ]
        else:
            for n in current:
                if isinstance(n, dict):
                    v = n.get(seg)
                    if isinstance(v, list):
                        nxt += v
                    elif v is not None:
                        nxt.append(v)
        if not nxt:
            return nxt
        current = nxt
    return [v for v in current if v is not None]


Getter = Callable[[dict[str, Any]], list[Any]]


@cache
def _getter(path: str) -> Getter:
    """`walk` along one path, specialised for the commonest shape (one plain element)."""
    segments = _segments(path)
    if len(segments) > 1 or segments[0][:4] == "ext(":
        return lambda resource: walk(resource, segments)
    name = segments[0]

    def get(resource: dict[str, Any]) -> list[Any]:
        value = resource.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return [v for v in value if v is not None]
        return [value]

    return get


def values_at(resource: dict[str, Any], param: SearchParam) -> list[Any]:
    """The values of one parameter's paths in a resource (outside indexing: `_has`)."""
    return [v for path in param.paths for v in _getter(path)(resource)]


# -- tokens --------------------------------------------------------------------------------


def coded(system: Any, code: Any) -> list[str]:
    if not isinstance(code, str) or not code or not indexable(code):
        return []
    if isinstance(system, str) and system:
        return [token_value(system, code)] if indexable(system) else []
    return [token_value(None, code)]


def token_values(value: Any) -> list[str]:
    if isinstance(value, bool):
        return [token_value(None, "true" if value else "false")]
    if isinstance(value, str):
        return coded(None, value)
    if not isinstance(value, dict):
        return []
    if "coding" in value:  # CodeableConcept
        out: list[str] = []
        for coding in value.get("coding") or ():
            if isinstance(coding, dict):
                out += coded(coding.get("system"), coding.get("code"))
        return out
    if "value" in value and "code" not in value:  # Identifier
        return coded(value.get("system"), value.get("value"))
    return coded(value.get("system"), value.get("code"))  # Coding


# -- references ----------------------------------------------------------------------------

_REF_TAIL = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(?:/_history/[^/]+)?$")


_RELATIVE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-\.]{1,64}")


def reference_key(ref: str) -> str | None:
    """ "Type/id" of a literal reference, relative or absolute; None for others (#contained)."""
    if _RELATIVE.fullmatch(ref):  # already "Type/id": most references a server writes
        return ref
    m = _REF_TAIL.search(ref)
    if m is None:
        return None
    start = m.start()
    if start > 0 and ref[start - 1] != "/":
        return None
    return f"{m.group(1)}/{m.group(2)}"


def _contained(resource: dict[str, Any], ref: str) -> dict[str, Any] | None:
    for item in resource.get("contained") or ():
        if isinstance(item, dict) and f"#{item.get('id')}" == ref:
            return item
    return None


def _identifiers(resource: dict[str, Any], value: dict[str, Any], depth: int = 0) -> list[Any]:
    idents: list[Any] = []
    if isinstance(value.get("identifier"), dict):
        idents.append(value["identifier"])
    ref = value.get("reference")
    target = _contained(resource, ref) if isinstance(ref, str) and ref[:1] == "#" else None
    if target is not None:
        found = target.get("identifier") or []
        idents += found if isinstance(found, list) else [found]
        # a contained PractitionerRole names its practitioner in turn (one level, no loops)
        inner = target.get("practitioner")
        if isinstance(inner, dict) and depth == 0:
            idents += _identifiers(resource, inner, 1)
    return idents


def reference_identifiers(resource: dict[str, Any], value: dict[str, Any]) -> list[str]:
    """Identifier tokens of a Reference: its own identifier, or its contained target's."""
    out: list[str] = []
    for ident in _identifiers(resource, value):
        if isinstance(ident, dict):
            out += coded(ident.get("system"), ident.get("value"))
    return out


# -- strings -------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case and accents folded: "Hélène" and "HELENE" index alike."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# -- extraction ----------------------------------------------------------------------------


class _Acc:
    __slots__ = ("tokens", "refs", "strings", "dates")

    def __init__(self) -> None:
        self.tokens: list[tuple[str, str]] = []
        self.refs: list[tuple[str, str]] = []
        self.strings: list[tuple[str, str]] = []
        self.dates: list[tuple[str, str, str]] = []


def _add_token(acc: _Acc, res: dict[str, Any], p: SearchParam, value: Any) -> None:
    acc.tokens += [(p.name, v) for v in token_values(value)]


def _add_uri(acc: _Acc, res: dict[str, Any], p: SearchParam, value: Any) -> None:
    acc.tokens += [(p.name, v) for v in coded(None, value)]


def _add_reference(acc: _Acc, res: dict[str, Any], p: SearchParam, value: Any) -> None:
    if not isinstance(value, dict):
        return
    ref = value.get("reference")
    key = reference_key(ref) if isinstance(ref, str) else None
    if key is not None and (not p.only_targets or key.split("/", 1)[0] in p.targets):
        acc.refs.append((p.name, key))
    if p.by_identifier:
        acc.tokens += [(f"{p.name}:identifier", v) for v in reference_identifiers(res, value)]


def _add_string(acc: _Acc, res: dict[str, Any], p: SearchParam, value: Any) -> None:
    if isinstance(value, str) and value:
        acc.strings.append((p.name, fold(value)))
        acc.strings.append((f"{p.name}:exact", value))


def _add_date(acc: _Acc, res: dict[str, Any], p: SearchParam, value: Any) -> None:
    rng = parse_range(value) if isinstance(value, str) else None
    if rng is None and isinstance(value, dict):
        rng = period_range(value)
    if rng is not None:
        acc.dates.append((p.name, rng[0], rng[1]))


def _add_quantity(acc: _Acc, res: dict[str, Any], p: SearchParam, value: Any) -> None:
    acc.dates += index_entries(p.name, value)


_ADDERS = {
    "token": _add_token,
    "uri": _add_uri,
    "reference": _add_reference,
    "string": _add_string,
    "date": _add_date,
    "quantity": _add_quantity,
}


def _dedupe(items: list[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


Adder = Callable[[_Acc, dict[str, Any], SearchParam, Any], None]


@cache
def _extractors(rtype: str) -> tuple[tuple[SearchParam, Adder, tuple[Getter, ...]], ...]:
    """Per parameter of a type: how its values are read and indexed (looked up once)."""
    return tuple(
        (p, _ADDERS[p.type], tuple(_getter(path) for path in p.paths))
        for p in params_of(rtype).values()
    )


@cache
def _sortable(rtype: str) -> tuple[str, ...]:
    return tuple(p.name for p in params_of(rtype).values() if p.sortable)


def _sort_keys(rtype: str, dates: list[tuple[str, str, str]]) -> tuple[tuple[str, str], ...]:
    out = []
    for name in _sortable(rtype):
        lows = [lo for param, lo, _ in dates if param == name]
        out.append((name, min(lows) if lows else ""))
    return tuple(out)


def extract_terms(rtype: str, resource: dict[str, Any]) -> IndexTerms:
    if not resource:
        return IndexTerms()
    acc = _Acc()
    for param, add, getters in _extractors(rtype):
        values = getters[0](resource)
        for get in getters[1:]:
            values = values + get(resource)
        if not values and param.absent is not None:
            values = [param.absent]
        for value in values:
            add(acc, resource, param, value)
    return IndexTerms(
        tokens=_dedupe(acc.tokens),
        strings=_dedupe(acc.strings),
        dates=_dedupe(acc.dates),
        refs=_dedupe(acc.refs),
        # one definition of the compartment owner, shared with the access policy
        patient=patient_of(rtype, resource),
        sort=_sort_keys(rtype, acc.dates),
    )
