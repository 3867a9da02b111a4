"""FHIR date/dateTime/instant values as inclusive [low, high] UTC instants (pure).

A value covers the whole interval its precision implies: `2024` is the year, `2024-05` the
month, `2024-05-03T10:00+02:00` that minute. Instants are rendered in one fixed-width form,
`YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (the form the stores write `last_updated` in), so both
databases compare them as plain strings and an index range scan answers a date query.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

MIN_INSTANT = "0001-01-01T00:00:00.000000+00:00"
MAX_INSTANT = "9999-12-31T23:59:59.999999+00:00"

_DATE_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d{1,9})?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_TICK = timedelta(microseconds=1)


def render(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def _add_months(dt: datetime, months: int) -> datetime:
    total = dt.year * 12 + dt.month - 1 + months
    return dt.replace(year=total // 12, month=total % 12 + 1)


def _tz(text: str | None) -> timedelta:
    if not text or text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))


def _instant_range(value: str) -> tuple[str, str] | None:
    """Fast path for the commonest form on writes: a dateTime to the second with a zone."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    low = render(dt)
    if "." in value:
        return low, low
    return low, render(dt + timedelta(seconds=1) - _TICK)


@lru_cache(maxsize=4096)  # a document repeats its dates (date = creation, period bounds)
def parse_range(value: str) -> tuple[str, str] | None:
    """[low, high] of a FHIR date-like value, or None when it is not one."""
    if len(value) >= 20 and value[10:11] == "T" and value[16:17] == ":":
        fast = _instant_range(value)
        if fast is not None:
            return fast
    m = _DATE_RE.fullmatch(value.strip())
    if m is None:
        return None
    g = m.groupdict()
    try:
        low = datetime(
            int(g["y"]),
            int(g["m"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            int((g["f"] or ".0")[1:7].ljust(6, "0")),
            tzinfo=UTC,
        ) - _tz(g["tz"])
    except (ValueError, OverflowError):
        return None
    try:
        high = _upper(low, g) - _TICK
    except (OverflowError, ValueError):
        return render(low), MAX_INSTANT
    return render(low), render(high)


def _upper(low: datetime, g: dict[str, str | None]) -> datetime:
    if g["f"]:
        return low + _TICK
    if g["S"]:
        return low + timedelta(seconds=1)
    if g["M"]:
        return low + timedelta(minutes=1)
    if g["d"]:
        return low + timedelta(days=1)
    if g["m"]:
        return _add_months(low, 1)
    return _add_months(low, 12)


def period_range(period: dict[str, object]) -> tuple[str, str] | None:
    """A Period: low of its start, high of its end; an open end is unbounded."""
    start, end = period.get("start"), period.get("end")
    lo = parse_range(start) if isinstance(start, str) else None
    hi = parse_range(end) if isinstance(end, str) else None
    if lo is None and hi is None:
        return None
    return (lo[0] if lo else MIN_INSTANT, hi[1] if hi else MAX_INSTANT)


def widen(low: str, high: str, now: datetime) -> tuple[str, str]:
    """The `ap` range: the value widened by 10% of its distance to now (at least a day)."""
    lo = datetime.fromisoformat(low)
    hi = datetime.fromisoformat(high)
    gap = max(abs(now - lo), abs(now - hi)) / 10
    gap = max(gap, timedelta(days=1))
    try:
        wlo = render(lo - gap)
    except OverflowError:
        wlo = MIN_INSTANT
    try:
        whi = render(hi + gap)
    except OverflowError:
        whi = MAX_INSTANT
    return wlo, whi
