"""XSD simple-type checks (built-in lexical spaces, whitespace, facets), as libxml2 judges them.

The structural validator must agree with the official XSD run by lxml, so where
libxml2 departs from the letter of XML Schema Part 2 these functions follow
libxml2: a ``dateTime`` may not start with whitespace and may end with it only
after an explicit time zone; fractional seconds are accumulated digit by digit
in a double (so ``59.99999999999999`` is 60 and invalid); ``base64Binary``
ignores characters outside its alphabet; ``anyURI`` is an RFC 3986 reference
after characters such as spaces have been tolerated. ``compile_checkers`` turns
the generated simple types into one closure each, built once at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from greenlane.sps.tabletypes import SimpleType

Problem = tuple[str, str]
"""(code, message) of a value that fails its type."""
Checker = Callable[[str], Problem | None]

_WS = " \t\n\r"
_WS_RUN = re.compile(r"[ \t\n\r]+")
_REPLACE = str.maketrans("\t\n\r", "   ")
LONG_MAX = (1 << 63) - 1


def collapse(value: str) -> str:
    """XSD whiteSpace=collapse: runs of XML whitespace become one space, ends trimmed."""
    if "  " in value or "\t" in value or "\n" in value or "\r" in value:
        return _WS_RUN.sub(" ", value).strip(" ")
    if value[:1] == " " or value[-1:] == " ":
        return value.strip(" ")
    return value


def normalize(value: str, whitespace: str) -> str:
    if whitespace == "collapse":
        return collapse(value)
    if whitespace == "replace":
        return value.translate(_REPLACE)
    return value


# --- numbers and booleans -----------------------------------------------------

_DECIMAL = re.compile(r"[ \t\n\r]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t\n\r]*")
_INTEGER = re.compile(r"[ \t\n\r]*[+-]?[0-9]+[ \t\n\r]*")
_BOOLEAN = re.compile(r"[ \t\n\r]*(?:true|false|1|0)[ \t\n\r]*")
_HEX = re.compile(r"[ \t\n\r]*(?:[0-9A-Fa-f]{2})*[ \t\n\r]*")
_FLOAT = re.compile(
    r"[ \t\n\r]*(?:NaN|-?INF|[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]*)?[ \t\n\r]*)"
)

_INTEGER_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(1 << 63), (1 << 63) - 1),
    "int": (-(1 << 31), (1 << 31) - 1),
    "short": (-(1 << 15), (1 << 15) - 1),
    "byte": (-128, 127),
    "unsignedLong": (0, (1 << 64) - 1),
    "unsignedInt": (0, (1 << 32) - 1),
    "unsignedShort": (0, 65535),
    "unsignedByte": (0, 255),
}


def _integer_check(builtin: str) -> Callable[[str], bool]:
    low, high = _INTEGER_BOUNDS[builtin]

    def check(value: str) -> bool:
        if _INTEGER.fullmatch(value) is None:
            return False
        if low is None and high is None:
            return True
        number = int(value.strip(_WS))
        return (low is None or number >= low) and (high is None or number <= high)

    return check


# --- dates and times (a port of libxml2's xmlSchemaValidateDates) -------------

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(year: int) -> bool:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def _two(s: str, i: int) -> int | None:
    """Two ASCII digits at ``i``, or None."""
    if i + 1 < len(s) and "0" <= s[i] <= "9" and "0" <= s[i + 1] <= "9":
        return (ord(s[i]) - 48) * 10 + ord(s[i + 1]) - 48
    return None


class _Date:
    __slots__ = ("day", "hour", "minute", "month", "second", "tzo", "year")

    def __init__(self) -> None:
        self.year = self.month = self.day = self.hour = self.minute = self.tzo = 0
        self.second = 0.0

    def valid_date(self) -> bool:
        if self.year == 0 or not 1 <= self.month <= 12:
            return False
        days = 29 if self.month == 2 and _leap(self.year) else _DAYS[self.month - 1]
        return self.day <= days

    def valid_time(self) -> bool:
        ordinary = self.hour < 24 and self.minute < 60 and 0 <= self.second < 60
        end_of_day = self.hour == 24 and self.minute == 0 and self.second == 0
        return (ordinary or end_of_day) and -840 <= self.tzo <= 840


def _parse_time(s: str, i: int, dt: _Date) -> int | None:
    """hh:mm:ss(.s+)? at ``i``; the index after it, or None."""
    hour = _two(s, i)
    if hour is None or s[i + 2 : i + 3] != ":" or hour > 24:
        return None
    dt.hour = hour
    minute = _two(s, i + 3)
    if minute is None or minute > 59:
        return None
    dt.minute = minute
    if s[i + 5 : i + 6] != ":":
        return None
    seconds = _two(s, i + 6)
    if seconds is None:
        return None
    i += 8
    number = float(seconds)
    if s[i : i + 1] == ".":
        i += 1
        if not (i < len(s) and "0" <= s[i] <= "9"):
            return None
        mult = 1.0
        while i < len(s) and "0" <= s[i] <= "9":
            mult /= 10
            number += (ord(s[i]) - 48) * mult
            i += 1
    dt.second = number
    return i if dt.valid_time() else None


def _parse_zone(s: str, i: int, dt: _Date) -> int | None:
    """An optional time zone at ``i``; the index after it, or None when malformed."""
    if i >= len(s):
        dt.tzo = 0
        return i
    if s[i] == "Z":
        dt.tzo = 0
        return i + 1
    if s[i] not in "+-":
        return None
    negative = s[i] == "-"
    hours = _two(s, i + 1)
    if hours is None or hours > 23 or s[i + 3 : i + 4] != ":":
        return None
    minutes = _two(s, i + 4)
    if minutes is None or minutes > 59:
        return None
    tzo = hours * 60 + minutes
    dt.tzo = -tzo if negative else tzo
    if not -840 <= dt.tzo <= 840:
        return None
    return i + 6


def _zone_ends(s: str, i: int, dt: _Date) -> bool | None:
    """libxml2's RETURN_TYPE_IF_VALID: True (the value ends here), False (invalid), None (go on)."""
    if i < len(s) and s[i] not in "Z+-":
        return None
    end = _parse_zone(s, i, dt)
    if end is None:
        return None
    return end == len(s)


def _date_kind(s: str) -> str | None:
    """Which of dateTime, date, time (or another g* type) ``s`` is, the way libxml2 decides."""
    dt = _Date()
    i = 0
    while i < len(s) and s[i] in _WS:
        i += 1
    if s[i : i + 2] == "--":
        return "gMonthDay"  # or gMonth/gDay: never one of the types we carry
    if i < len(s) and "0" <= s[i] <= "9":
        end = _parse_time(s, i, dt)
        if end is not None:
            ends = _zone_ends(s, end, dt)
            if ends is not None:
                return "time" if ends else None
    # Date parsing restarts from the very first character (no whitespace skipped).
    dt = _Date()
    i = 0
    if not s or not ("0" <= s[0] <= "9" or s[0] in "+-"):
        return None
    negative = s[0] == "-"
    if negative:
        i = 1
    first = i
    year = 0
    while i < len(s) and "0" <= s[i] <= "9":
        year = year * 10 + ord(s[i]) - 48
        if year > LONG_MAX:
            return None
        i += 1
    digits = i - first
    if digits < 4 or (digits > 4 and s[first] == "0"):
        return None
    dt.year = -year if negative else year
    if dt.year == 0:
        return None
    ends = _zone_ends(s, i, dt)
    if ends is not None:
        return "gYear" if ends else None
    if s[i : i + 1] != "-":
        return None
    month = _two(s, i + 1)
    if month is None or not 1 <= month <= 12:
        return None
    dt.month = month
    i += 3
    ends = _zone_ends(s, i, dt)
    if ends is not None:
        return "gYearMonth" if ends else None
    if s[i : i + 1] != "-":
        return None
    day = _two(s, i + 1)
    if day is None or not 1 <= day <= 31:
        return None
    dt.day = day
    i += 3
    if not dt.valid_date():
        return None
    ends = _zone_ends(s, i, dt)
    if ends is not None:
        return "date" if ends else None
    if s[i : i + 1] != "T":
        return None
    end = _parse_time(s, i + 1, dt)
    if end is None:
        return None
    end = _parse_zone(s, end, dt)
    if end is None:
        return None
    while end < len(s) and s[end] in _WS:
        end += 1
    if end != len(s) or not (dt.valid_date() and dt.valid_time()):
        return None
    return "dateTime"


def _date_check(kind: str) -> Callable[[str], bool]:
    return lambda value: _date_kind(value) == kind


# --- base64Binary (libxml2 ignores characters outside the alphabet) -----------

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_NOT_ALPHABET = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_B64_NOT_DATA_OR_PAD = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)}


def _base64_octets(value: str) -> int | None:
    """The decoded length in octets, or None when libxml2 would refuse the value."""
    raw = value.encode()
    first_pad = raw.find(b"=")
    head = raw if first_pad < 0 else raw[:first_pad]
    data = head.translate(None, _B64_NOT_ALPHABET)
    count = len(data)
    pad = 0
    if first_pad >= 0:
        tail = raw[first_pad:].translate(None, _B64_NOT_DATA_OR_PAD)
        if tail.strip(b"="):
            return None  # a data character after the padding
        pad = len(tail)
    total = 3 * (count // 4)
    if pad == 0:
        return total if count % 4 == 0 else None
    if pad > 2 or count % 4 != 4 - pad:
        return None
    last = _B64_VALUE[data[-1]]
    if pad == 1:
        return total + 2 if not last & ~0x3C else None
    return total + 1 if not last & ~0x30 else None


# --- anyURI (a port of libxml2's RFC 3986 reference parser) -------------------

_URI_TOLERATED = re.compile(r"[\x00-\x20\x7f-\U0010ffff<>\"{}|\\^`']")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = frozenset("!$&()*+,;='")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.")


class _Uri:
    """Cursor over one candidate URI; each method returns the new index or None."""

    def __init__(self, text: str) -> None:
        self.s = text + "\0\0\0"

    def pct(self, i: int) -> bool:
        s = self.s
        return s[i] == "%" and s[i + 1] in _HEXDIGITS and s[i + 2] in _HEXDIGITS

    def pchar(self, i: int) -> bool:
        c = self.s[i]
        return c in _UNRESERVED or self.pct(i) or c in _SUB_DELIMS or c in ":@"

    def step(self, i: int) -> int:
        return i + 3 if self.s[i] == "%" else i + 1

    def segment(self, i: int, forbid: str, empty: bool) -> int | None:
        if not self.pchar(i) or self.s[i] == forbid:
            return i if empty else None
        i = self.step(i)
        while self.pchar(i) and self.s[i] != forbid:
            i = self.step(i)
        return i

    def more_segments(self, i: int | None) -> int | None:
        while i is not None and self.s[i] == "/":
            i = self.segment(i + 1, "\0", True)
        return i

    def path_absolute(self, i: int) -> int | None:
        after = self.segment(i + 1, "\0", False)
        return (i + 1) if after is None else self.more_segments(after)

    def host(self, i: int) -> int | None:
        """IP-literal or reg-name (libxml2's IPv4 branch never succeeds; reg-name covers it)."""
        s = self.s
        if s[i] == "[":
            i += 1
            while s[i] != "]" and s[i] != "\0":
                i += 1
            return i + 1 if s[i] == "]" else None
        while s[i] in _UNRESERVED or self.pct(i) or s[i] in _SUB_DELIMS:
            i = self.step(i)
        return i

    def authority(self, i: int) -> int | None:
        s = self.s
        j = i
        while s[j] in _UNRESERVED or self.pct(j) or s[j] in _SUB_DELIMS or s[j] == ":":
            j = self.step(j)
        start = j + 1 if s[j] == "@" else i
        end = self.host(start)
        if end is None:
            return None
        if s[end] == ":":
            end += 1
            if not ("0" <= s[end] <= "9"):
                return None
            port = 0
            while "0" <= s[end] <= "9":
                port = port * 10 + ord(s[end]) - 48
                if port > 2147483647:
                    return None
                end += 1
        return end

    def tail(self, i: int | None) -> bool:
        s = self.s
        if i is None:
            return False
        if s[i] == "?":
            i += 1
            while self.pchar(i) or s[i] in "/?":
                i = self.step(i)
        if s[i] == "#":
            i += 1
            while self.pchar(i) or s[i] in "/?[]":
                i = self.step(i)
        return i == len(s) - 3

    def absolute(self) -> bool:
        s = self.s
        if not (s[0].isascii() and s[0].isalpha()):
            return False
        i = 1
        while s[i] in _SCHEME_CHARS:
            i += 1
        if s[i] != ":":
            return False
        i += 1
        j: int | None
        if s[i] == "/" and s[i + 1] == "/":
            j = self.authority(i + 2)
            j = self.more_segments(j)
        elif s[i] == "/":
            j = self.path_absolute(i)
        elif self.pchar(i):
            j = self.more_segments(self.segment(i, "\0", False))
        else:
            j = i
        return self.tail(j)

    def relative(self) -> bool:
        s = self.s
        j: int | None
        if s[0] == "/" and s[1] == "/":
            j = self.more_segments(self.authority(2))
        elif s[0] == "/":
            j = self.path_absolute(0)
        elif self.pchar(0):
            j = self.more_segments(self.segment(0, ":", False))
        else:
            j = 0
        return self.tail(j)


def _any_uri(value: str) -> bool:
    text = _URI_TOLERATED.sub("_", collapse(value))
    uri = _Uri(text)
    return uri.absolute() or uri.relative()


# --- names ---------------------------------------------------------------------

_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_CHAR = _NAME_START + r"\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
_NCNAME = re.compile(f"[ \t\n\r]*[{_NAME_START}][{_NAME_CHAR}]*[ \t\n\r]*")
_NAME = re.compile(f"[ \t\n\r]*[:{_NAME_START}][:{_NAME_CHAR}]*[ \t\n\r]*")
_NMTOKEN = re.compile(f"[ \t\n\r]*[:{_NAME_CHAR}]+[ \t\n\r]*")
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*")


_PATTERNS: dict[str, re.Pattern[str]] = {
    "decimal": _DECIMAL,
    "boolean": _BOOLEAN,
    "float": _FLOAT,
    "double": _FLOAT,
    "hexBinary": _HEX,
    "NCName": _NCNAME,
    "ID": _NCNAME,
    "IDREF": _NCNAME,
    "Name": _NAME,
    "NMTOKEN": _NMTOKEN,
}
"""The built-ins whose lexical space is one regular expression (on the value as it appears)."""


def _always(_value: str) -> bool:
    return True


def builtin_lexical(builtin: str) -> Callable[[str], bool]:
    """The lexical test of a built-in, on the value as it appears (libxml2 trims where it does)."""
    if builtin in ("string", "normalizedString", "token", "anySimpleType"):
        return _always
    if builtin in _INTEGER_BOUNDS:
        return _integer_check(builtin)
    if builtin in ("dateTime", "date", "time"):
        return _date_check(builtin)
    pattern = _PATTERNS.get(builtin)
    if pattern is not None:
        return lambda v: pattern.fullmatch(v) is not None
    simple: dict[str, Callable[[str], bool]] = {
        "base64Binary": lambda v: _base64_octets(v) is not None,
        "anyURI": _any_uri,
        "language": lambda v: _LANGUAGE.fullmatch(collapse(v)) is not None,
    }
    if builtin not in simple:
        raise NotImplementedError(f"built-in type {builtin} is not supported")
    return simple[builtin]


_NUMERIC = frozenset({"decimal", "float", "double", *_INTEGER_BOUNDS})


def _length(value: str, builtin: str) -> int:
    if builtin == "base64Binary":
        return _base64_octets(value) or 0
    if builtin == "hexBinary":
        return len(value) // 2
    return len(value)


def _digits(value: Decimal) -> tuple[int, int]:
    """(total digits, fraction digits) of a decimal value, without insignificant zeros."""
    _sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    fraction = max(0, -exponent)
    total = max(len(digits), fraction) if digits != (0,) else 1
    return total, fraction


def _facets(st: SimpleType) -> list[Callable[[str], Problem | None]]:
    """Checks of every facet but the enumeration, on the whitespace-normalized value."""
    checks: list[Callable[[str], Problem | None]] = []
    name, builtin = st.name, st.builtin
    for pattern in st.patterns:
        regex = re.compile(pattern)

        def matches(v: str, regex: re.Pattern[str] = regex) -> Problem | None:
            if regex.fullmatch(v) is None:
                return ("structure.facet", f"does not match the pattern of {name}")
            return None

        checks.append(matches)
    low = st.length if st.length is not None else st.min_length
    high = st.length if st.length is not None else st.max_length
    if low is not None or high is not None:

        def length(v: str) -> Problem | None:
            n = _length(v, builtin)
            if (low is not None and n < low) or (high is not None and n > high):
                bounds = f"{low}..{high}" if low != high else str(low)
                return ("structure.facet", f"has length {n}, {name} allows {bounds}")
            return None

        checks.append(length)
    bounds = [
        (st.min_inclusive, lambda a, b: a >= b, "at least"),
        (st.max_inclusive, lambda a, b: a <= b, "at most"),
        (st.min_exclusive, lambda a, b: a > b, "more than"),
        (st.max_exclusive, lambda a, b: a < b, "less than"),
    ]
    if builtin in _NUMERIC:
        for limit, ok, words in bounds:
            if limit is None:
                continue
            bound = Decimal(limit)

            def in_range(
                v: str, bound: Decimal = bound, ok: Callable[..., bool] = ok, words: str = words
            ) -> Problem | None:
                if not ok(Decimal(v.strip(_WS)), bound):
                    return ("structure.facet", f"must be {words} {bound} ({name})")
                return None

            checks.append(in_range)
    if st.total_digits is not None or st.fraction_digits is not None:

        def digits(v: str) -> Problem | None:
            total, fraction = _digits(Decimal(v.strip(_WS)))
            if st.total_digits is not None and total > st.total_digits:
                return ("structure.facet", f"has more than {st.total_digits} digits ({name})")
            if st.fraction_digits is not None and fraction > st.fraction_digits:
                return (
                    "structure.facet",
                    f"has more than {st.fraction_digits} fraction digits ({name})",
                )
            return None

        checks.append(digits)
    return checks


def _canonical(builtin: str) -> Callable[[str], str]:
    """Enumerations compare values, not spellings: 1.0 equals 1 for a decimal."""
    if builtin in _NUMERIC and builtin not in ("float", "double"):

        def number(v: str) -> str:
            try:
                return str(Decimal(v.strip(_WS)).normalize())
            except InvalidOperation:
                return v

        return number
    if builtin == "boolean":
        return lambda v: {"1": "true", "0": "false"}.get(v.strip(_WS), v.strip(_WS))
    return lambda v: v


def _atomic(st: SimpleType) -> Checker:
    lexical = builtin_lexical(st.builtin)
    whitespace = st.whitespace
    facets = _facets(st)
    canonical = _canonical(st.builtin)
    enumeration = st.enumeration
    if enumeration is not None and st.builtin in _NUMERIC | {"boolean"}:
        enumeration = frozenset(canonical(v) for v in enumeration)
    name, builtin = st.name, st.builtin
    trivial = lexical is _always and not facets and enumeration is None

    def check(value: str) -> Problem | None:
        if trivial:
            return None
        if not lexical(value):
            return ("structure.type", f"is not a valid {builtin} ({name})")
        if not facets and enumeration is None:
            return None
        normal = normalize(value, whitespace)
        for facet in facets:
            problem = facet(normal)
            if problem is not None:
                return problem
        if enumeration is not None and canonical(normal) not in enumeration:
            return ("structure.enumeration", f"is not in the code list {name}")
        return None

    if trivial:
        return lambda _value: None
    if lexical is _always and not facets and enumeration is not None and whitespace == "collapse":
        codes = enumeration

        def enumerated(value: str) -> Problem | None:
            if value in codes or collapse(value) in codes:
                return None
            return ("structure.enumeration", f"is not in the code list {name}")

        return enumerated
    return check


def plain_codes(st: SimpleType) -> frozenset[str] | None:
    """The code list of a type that is nothing but one (a token-like enumeration), else None.

    Such a value is valid exactly when it, or its collapsed form, is in the set.
    """
    if st.members or st.enumeration is None or st.whitespace != "collapse":
        return None
    if builtin_lexical(st.builtin) is not _always or _facets(st):
        return None
    return st.enumeration


def plain_pattern(st: SimpleType) -> re.Pattern[str] | None:
    """The expression of a type that is nothing but a built-in with one (a decimal, say), else None.

    Such a value is valid exactly when the expression matches all of it, so the
    validator can match it without calling the type's checker.
    """
    if st.members or st.enumeration is not None or _facets(st):
        return None
    return _PATTERNS.get(st.builtin)


def _union(name: str, members: list[Checker]) -> Checker:
    def union(value: str) -> Problem | None:
        if any(member(value) is None for member in members):
            return None
        return ("structure.type", f"matches no member type of {name}")

    return union


def compile_checkers(types: Mapping[str, SimpleType]) -> dict[str, Checker]:
    """One checker per simple type key; unions accept a value any member accepts."""
    checkers: dict[str, Checker] = {}
    for key, st in types.items():
        if not st.members:
            checkers[key] = _atomic(st)
    for key, st in types.items():
        if st.members:
            members = [checkers[m] for m in st.members]

            def union(
                value: str, members: list[Checker] = members, name: str = key
            ) -> Problem | None:
                if any(member(value) is None for member in members):
                    return None
                return ("structure.type", f"matches no member type of {name}")

            checkers[key] = union
    return checkers
