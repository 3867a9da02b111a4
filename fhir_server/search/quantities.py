"""Quantity search values (`[prefix]number|system|code`) and their index entries (pure).

A Quantity is indexed in the range index that holds dates, as an inclusive [low, high]
of numbers written in one fixed-width, order-preserving form (`encode`), so both stores
compare them as plain strings with the code they already have for dates. A value with a
comparator is the range it stands for (`<= 1.0` is [-inf, 1.0]).

Each Quantity is indexed under three names, so that a search by number alone, by unit
code in any system (`||code`, which FHIR lets match the unit text too) and by system and
code each find it by an exact name: `<param>`, `<param>||<code or unit>`,
`<param>|<system>|<code>`.

Search prefixes follow FHIR's number rules: `eq` (default) is the range the value's own
precision implies (`5.4` is [5.35, 5.45)), `ne` its negation, `gt lt ge le` compare with
the value itself, `sa` / `eb` start after / end before it, `ap` is within 10 %.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from fhir_server.errors import bad_request
from fhir_server.search.plan import Cond, DateMatch, Not

# numbers are kept to nine decimal places within +/- 10^18: beyond any lab value
_OFFSET = Decimal(10) ** 18
_PLACES = Decimal("1e-9")
_WIDTH = 29  # 19 integer digits, the point, 9 decimals
_NUMBER = re.compile(r"[+-]?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?")
_PREFIX = re.compile(r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)", re.S)
# the part of a value ap(proximately) matches on each side
_APPROXIMATE = Decimal("0.1")


def encode(value: Decimal, rounding: str = ROUND_FLOOR) -> str:
    """An order-preserving string of a number (clamped to the index's range)."""
    clamped = min(max(value, -_OFFSET), _OFFSET)
    shifted = (clamped + _OFFSET).quantize(_PLACES, rounding=rounding)
    return f"{shifted:0{_WIDTH}.9f}"


LOWEST = encode(-_OFFSET)
HIGHEST = encode(_OFFSET)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = str(value)
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


# a resource's comparator -> the range its value stands for
_RESOURCE_RANGE: dict[str | None, Callable[[str], tuple[str, str]]] = {
    None: lambda v: (v, v),
    "<": lambda v: (LOWEST, v),
    "<=": lambda v: (LOWEST, v),
    ">": lambda v: (v, HIGHEST),
    ">=": lambda v: (v, HIGHEST),
}


def index_entries(name: str, quantity: Any) -> list[tuple[str, str, str]]:
    """(index name, low, high) of one Quantity; none when it holds no number."""
    if not isinstance(quantity, dict):
        return []
    number = _decimal(quantity.get("value"))
    ranged = _RESOURCE_RANGE.get(quantity.get("comparator"))
    if number is None or ranged is None:
        return []
    low, high = ranged(encode(number))
    names = [name]
    system, code, unit = (quantity.get(k) for k in ("system", "code", "unit"))
    names += [f"{name}||{u}" for u in dict.fromkeys((code, unit)) if isinstance(u, str) and u]
    if isinstance(system, str) and system and isinstance(code, str) and code:
        names.append(f"{name}|{system}|{code}")
    return [(n, low, high) for n in names]


def _half_unit(text: str) -> Decimal:
    """Half the last digit the value was written with (`5.4` -> 0.05, `100` -> 0.5)."""
    exponent = Decimal(text).as_tuple().exponent
    assert isinstance(exponent, int)  # a finite number: checked by _NUMBER
    return Decimal(5) * Decimal(10) ** (exponent - 1)


def _bounds(prefix: str, number: Decimal, text: str) -> tuple[tuple[str, str, str], ...]:
    q = encode(number)
    if prefix in ("eq", "ne"):
        half = _half_unit(text)
        return (
            ("lo", ">=", encode(number - half)),
            ("hi", "<", encode(number + half, ROUND_CEILING)),
        )
    if prefix == "ap":
        spread = abs(number) * _APPROXIMATE
        low, high = encode(number - spread), encode(number + spread, ROUND_CEILING)
        return (("lo", "<=", high), ("hi", ">=", low))
    return {
        "gt": (("hi", ">", q),),
        "lt": (("lo", "<", q),),
        "ge": (("hi", ">=", q),),
        "le": (("lo", "<=", q),),
        "sa": (("lo", ">", q),),
        "eb": (("hi", "<", q),),
    }[prefix]


def quantity_cond(name: str, value: str) -> Cond:
    """One value of a quantity search parameter as a condition on the range index."""
    number_part, _, unit = value.partition("|")
    m = _PREFIX.fullmatch(number_part)
    prefix, text = (m.group(1) or "eq", m.group(2)) if m else ("eq", number_part)
    number = _decimal(text)
    if number is None:
        raise bad_request(
            f"Invalid quantity {value!r} for {name}: [prefix]number|system|code", name
        )
    indexed = name
    if unit:
        system, sep, code = unit.partition("|")
        if not sep or not code:
            raise bad_request(f"Invalid unit in {value!r} for {name}: system|code or |code", name)
        indexed = f"{name}|{system}|{code}"
    cond = DateMatch(indexed, _bounds(prefix, number, text))  # type: ignore[arg-type]
    return Not(cond) if prefix == "ne" else cond
