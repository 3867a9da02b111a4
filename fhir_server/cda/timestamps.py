"""HL7 v3 TS (YYYYMMDDHHMMSS.s+ZZZZ) to FHIR date / dateTime / instant strings."""

from __future__ import annotations

import re

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})(\d{2})?(\.\d{1,6})?)?([+-]\d{4}|Z)?$")


def ts_to_fhir(value: str | None) -> str | None:
    """FHIR dateTime (or date) for a TS; None if malformed.

    A time without a UTC offset cannot be a FHIR dateTime, so it is cut to the date.
    """
    if not value:
        return None
    m = _TS.match(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    # the pattern reads a day only after a month
    date = year if month is None else f"{year}-{month}" if day is None else f"{year}-{month}-{day}"
    if hour is None or zone is None or day is None:
        return date
    offset = "Z" if zone == "Z" else f"{zone[:3]}:{zone[3:]}"
    return f"{date}T{hour}:{minute}:{second or '00'}{fraction or ''}{offset}"


def ts_to_instant(value: str | None) -> str | None:
    """FHIR instant (time and offset required), or None when the TS is not that precise."""
    converted = ts_to_fhir(value)
    return converted if converted is not None and "T" in converted else None


def ts_to_date(value: str | None) -> str | None:
    converted = ts_to_fhir(value)
    return converted[:10] if converted is not None and len(converted) >= 10 else None
