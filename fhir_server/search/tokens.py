"""Token index terms: one term per coded value, the code before its system.

A term is "<param>|<code>\\x1f<system>" ("" as the system when there is none), so each
form of a token search is one range or one key of the same index:

- `code` (any system): the terms starting "<param>|<code>\\x1f";
- `system|code`: the term "<param>|<code>\\x1f<system>";
- `|code` (no system): the term "<param>|<code>\\x1f";
- `system|` (any code of the system): the param's terms ending "\\x1f<system>" (a scan of
  that param's terms: the rare form pays, not every write).

Indexing "code" and "system|code" separately (the obvious layout) wrote each coded value
twice: the second row was about a third of the index rows of a filing.
The separator is U+001F, which FHIR strings may not contain (nor XML 1.0 documents): a
value holding one is not indexed rather than mistaken for another.
"""

from __future__ import annotations

SEP = "\x1f"


def token_value(system: str | None, code: str) -> str:
    """The indexed value of a code (in a system, or none)."""
    return f"{code}{SEP}{system or ''}"


def indexable(text: str) -> bool:
    return SEP not in text


def term(param: str, system: str | None, code: str) -> str:
    """The one term of `system|code` (system None or "": no system)."""
    return f"{param}|{token_value(system, code)}"


def code_prefix(param: str, code: str) -> str:
    """How the terms of `code` in any system (or none) begin."""
    return f"{param}|{code}{SEP}"


def system_suffix(system: str) -> str:
    """How every term of a code in `system` ends."""
    return SEP + system
