"""Whole numbers sent by clients (query parameters, headers, URL segments, cursors).

`str.isdigit()` accepts characters such as '²' that `int()` then refuses, and SQLite
overflows past 2**63 - 1: both turned a malformed request into a 500. Only ASCII digits
are numbers here, and values are bounded before they reach the database."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")
# 18 digits always fit in SQLite's signed 64-bit INTEGER
MAX_DIGITS = 18


def is_digits(text: object) -> bool:
    """True for a non-empty string of ASCII digits (any length)."""
    return isinstance(text, str) and _DIGITS.fullmatch(text) is not None


def whole_number(text: object) -> int | None:
    """The value of an ASCII-digit string of at most 18 digits, else None."""
    if not is_digits(text) or len(text) > MAX_DIGITS:  # type: ignore[arg-type]
        return None
    return int(text)  # type: ignore[arg-type]


def capped(text: object, cap: int) -> int | None:
    """An ASCII-digit count capped at `cap` (however many digits it has), else None."""
    if not is_digits(text):
        return None
    value = whole_number(text)
    return cap if value is None else min(value, cap)
