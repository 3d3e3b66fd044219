"""Read the date and time texts of SPS certificates without ever making a naive datetime.

Certificates carry dates as free strings (udt:DateTimeString, optionally with a
UNCL 2379 ``format``), as xsd:dateTime (udt:DateTime), as dates (udt:DateString)
and inside note contents (ADRD, ADDITLIL). Real ones use ``Z``, ``-03:00``,
``+0200``, no zone at all, bare dates and empty elements. The result keeps the
original text, gives the instant in UTC when there is one, and says how it was
read, so a caller can warn about a missing zone instead of guessing silently.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import NamedTuple

from lxml import etree

from greenlane.sps.identity import UDT

MAX_OFFSET = timedelta(hours=14)
"""The furthest any zone is from UTC (Kiribati, UTC+14); xsd:dateTime allows no more."""


class Reading(StrEnum):
    ZONED = "zoned"
    """Date and time with ``Z`` or a numeric offset: the instant is exact."""
    NO_ZONE = "no-zone"
    """Date and time without a zone, read as UTC; the caller should warn."""
    DATE_ONLY = "date-only"
    """A date without a time, read as its first instant (in its zone, else UTC)."""
    EMPTY = "empty"
    UNPARSEABLE = "unparseable"


class ParsedDateTime(NamedTuple):
    """A date and time as read: a named tuple, built in one C call (it is read per document)."""

    text: str
    value: datetime | None
    """Aware and in UTC, or None when the text is empty or unreadable."""
    reading: Reading
    offset: timedelta | None = None
    """The zone offset the text stated (None when it stated none)."""

    @property
    def ok(self) -> bool:
        return self.value is not None


_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
    r"\s*(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
# UNCL 2379 compact formats that a DateTimeString's format attribute may name.
_YMD = r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"
_HM = r"(?P<hour>\d{2})(?P<minute>\d{2})"
_COMPACT = {
    "102": re.compile(_YMD, re.ASCII),
    "203": re.compile(_YMD + _HM, re.ASCII),
    "204": re.compile(_YMD + _HM + r"(?P<second>\d{2})", re.ASCII),
    "205": re.compile(_YMD + _HM + r"(?P<zone>[+-]\d{4})", re.ASCII),
}


_tuple = tuple.__new__


def _parsed(
    text: str, value: datetime | None, reading: Reading, offset: timedelta | None = None
) -> ParsedDateTime:
    return _tuple(ParsedDateTime, (text, value, reading, offset))


_OFFSETS: dict[str, timedelta] = {}
"""The zones read so far: few distinct ones recur (Z, -05:00, +01:00, …)."""


def _offset(zone: str) -> timedelta:
    offset = _OFFSETS.get(zone)
    if offset is None:
        offset = _OFFSETS[zone] = _read_offset(zone)
    return offset


def _read_offset(zone: str) -> timedelta:
    if zone in ("Z", "z"):
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or "0")
    if minutes >= 60:
        raise ValueError("offset minutes out of range")
    offset = sign * timedelta(hours=hours, minutes=minutes)
    if abs(offset) > MAX_OFFSET:
        raise ValueError("offset beyond ±14:00")
    return offset


def _from_match(text: str, match: re.Match[str]) -> ParsedDateTime:
    parts = match.groupdict()
    zone = parts.get("zone")
    offset = _offset(zone) if zone else None
    tz = timezone(offset) if offset is not None else UTC
    day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    if parts.get("hour") is None:
        value = datetime.combine(day, time(0), tz).astimezone(UTC)
        return _parsed(text, value, Reading.DATE_ONLY, offset)
    hour, minute = int(parts["hour"]), int(parts["minute"])
    second = int(parts.get("second") or 0)
    micro = int((parts.get("fraction") or "0")[:6].ljust(6, "0"))
    extra = timedelta(0)
    if hour == 24 and minute == second == micro == 0:  # xsd:dateTime's end of the day
        hour, extra = 0, timedelta(days=1)
    value = (datetime.combine(day, time(hour, minute, second, micro), tz) + extra).astimezone(UTC)
    reading = Reading.ZONED if offset is not None else Reading.NO_ZONE
    return _parsed(text, value, reading, offset)


def parse_datetime(text: str | None, fmt: str | None = None) -> ParsedDateTime:
    """Read one date/time text; never raises, never returns a naive datetime.

    ``fmt`` is a DateTimeString's UNCL 2379 ``format`` attribute: 102, 203, 204
    and 205 are read as such; any other value falls back to ISO 8601.
    """
    original = text or ""
    stripped = original.strip()
    if not stripped:
        return _parsed(original, None, Reading.EMPTY)
    pattern = _COMPACT.get(fmt.strip()) if fmt else None
    match = (pattern or _ISO).fullmatch(stripped)
    if match is None and pattern is not None:
        match = _ISO.fullmatch(stripped)
    if match is None:
        return _parsed(original, None, Reading.UNPARSEABLE)
    try:
        if match.re is _ISO and match["hour"] is not None:
            fast = _fast(original, stripped, match["zone"])
            if fast is not None:
                return fast
        return _from_match(original, match)
    except (ValueError, OverflowError):
        return _parsed(original, None, Reading.UNPARSEABLE)


def _fast(original: str, stripped: str, zone: str | None) -> ParsedDateTime | None:
    """The common case through the C parser; None leaves the text to the full reading."""
    offset = _offset(zone) if zone else None  # our limits: minutes below 60, at most ±14:00
    try:
        value = datetime.fromisoformat(stripped)
    except ValueError:
        return None  # 24:00, a lower-case z, a space before the zone: read in full
    if value.utcoffset() != offset:
        return None
    if offset is None:
        return _parsed(original, value.replace(tzinfo=UTC), Reading.NO_ZONE)
    return _parsed(original, value.astimezone(UTC), Reading.ZONED, offset)


_DATETIME_STRING = f"{{{UDT}}}DateTimeString"
_DATETIME = f"{{{UDT}}}DateTime"
_DATE_STRING = f"{{{UDT}}}DateString"


def parse_element(element: etree._Element) -> ParsedDateTime:
    """Read a udt:DateTimeType or udt:DateType element (IssueDateTime, StartDateTime, …).

    The value is its DateTimeString, DateTime or DateString child; an element
    holding the text directly (seen in the wild, not schema-valid) is read too.
    """
    for child in element:
        if child.tag in (_DATETIME_STRING, _DATE_STRING):
            return parse_datetime(child.text, child.get("format"))
        if child.tag == _DATETIME:
            return parse_datetime(child.text)
    return parse_datetime(element.text)
