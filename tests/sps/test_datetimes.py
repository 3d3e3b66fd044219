"""Date and time texts of SPS certificates: every corpus value, the forms around it, properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from greenlane.safexml import parse_file
from greenlane.sps.datetimes import MAX_OFFSET, Reading, parse_datetime, parse_element
from greenlane.sps.identity import RAM, UDT
from tests.strategies import aware_datetimes, zoned_datetime_texts

DATE_NOTES = {"ADRD", "ADDI", "ADDIEDL", "ADDITLIL"}

# Every distinct date/time text in the corpus certificates, and how it must be read.
CORPUS_VALUES: dict[str, tuple[Reading, str | None]] = {
    "2001-12-17T09:30:47Z": (Reading.ZONED, "2001-12-17T09:30:47+00:00"),
    "2016-04-22T13:53:08-03:00": (Reading.ZONED, "2016-04-22T16:53:08+00:00"),
    "2016-04-22T13:53:08-04:00": (Reading.ZONED, "2016-04-22T17:53:08+00:00"),
    "2023-10-04T07:49:49+02:00": (Reading.ZONED, "2023-10-04T05:49:49+00:00"),
    "2023-10-04T07:49:49": (Reading.NO_ZONE, "2023-10-04T07:49:49+00:00"),
    "2016-04-22": (Reading.DATE_ONLY, "2016-04-22T00:00:00+00:00"),
    "2016-04-12": (Reading.DATE_ONLY, "2016-04-12T00:00:00+00:00"),
    "2021-09-10": (Reading.DATE_ONLY, "2021-09-10T00:00:00+00:00"),
    "": (Reading.EMPTY, None),
    # ADDIEDL in the Mattilsynet fixture: several inspection days in English prose.
    "May 1,2,5,10 2020": (Reading.UNPARSEABLE, None),
    "2024-02-26T10:15:00Z": (Reading.ZONED, "2024-02-26T10:15:00+00:00"),
    "2024-03-21T09:59:42Z": (Reading.ZONED, "2024-03-21T09:59:42+00:00"),
    "2024-03-21T10:00:29Z": (Reading.ZONED, "2024-03-21T10:00:29+00:00"),
    "2024-03-22T00:00:00Z": (Reading.ZONED, "2024-03-22T00:00:00+00:00"),
    "2024-03-22T10:12:02Z": (Reading.ZONED, "2024-03-22T10:12:02+00:00"),
    "2024-03-22T15:07:05Z": (Reading.ZONED, "2024-03-22T15:07:05+00:00"),
    "2024-03-23T00:00:00Z": (Reading.ZONED, "2024-03-23T00:00:00+00:00"),
    "2024-03-25T16:48:41Z": (Reading.ZONED, "2024-03-25T16:48:41+00:00"),
    "2024-03-25T16:48:49Z": (Reading.ZONED, "2024-03-25T16:48:49+00:00"),
    "2024-03-25T16:48:57Z": (Reading.ZONED, "2024-03-25T16:48:57+00:00"),
    "2024-03-25T16:49:21Z": (Reading.ZONED, "2024-03-25T16:49:21+00:00"),
    "2024-03-25T16:49:49Z": (Reading.ZONED, "2024-03-25T16:49:49+00:00"),
    "2024-03-25T16:53:18Z": (Reading.ZONED, "2024-03-25T16:53:18+00:00"),
    "2024-03-28T14:43:45Z": (Reading.ZONED, "2024-03-28T14:43:45+00:00"),
    "2024-03-28T14:43:59Z": (Reading.ZONED, "2024-03-28T14:43:59+00:00"),
    "2024-03-28T14:44:26Z": (Reading.ZONED, "2024-03-28T14:44:26+00:00"),
    "2024-03-28T14:48:18Z": (Reading.ZONED, "2024-03-28T14:48:18+00:00"),
    "2024-05-23T18:54:28Z": (Reading.ZONED, "2024-05-23T18:54:28+00:00"),
    "2024-05-23T18:56:34Z": (Reading.ZONED, "2024-05-23T18:56:34+00:00"),
    "2025-07-14T10:05:11Z": (Reading.ZONED, "2025-07-14T10:05:11+00:00"),
    "2025-07-14T12:36:07Z": (Reading.ZONED, "2025-07-14T12:36:07+00:00"),
}


def _corpus_values(corpus: Path) -> set[str]:
    """Every udt date/time element, every *DateTime element, and every date-typed note content."""
    values: set[str] = set()
    for path in sorted((corpus / "ephyto").rglob("*")):
        if not path.is_file():
            continue
        root = parse_file(path).root
        for element in root.iter(etree.Element):
            qname = etree.QName(element)
            if qname.namespace == RAM and qname.localname.endswith("DateTime"):
                values.add(parse_element(element).text.strip())
            elif qname.localname == "Subject" and (element.text or "").strip() in DATE_NOTES:
                note = element.getparent()
                assert note is not None
                values.update((c.text or "").strip() for c in note.iterfind(f"{{{RAM}}}Content"))
    return values


def test_the_table_covers_every_corpus_value(corpus: Path) -> None:
    """Each date/time text in the corpus is in the table below, so none goes unjudged."""
    assert _corpus_values(corpus) == set(CORPUS_VALUES)


@pytest.mark.parametrize("text", sorted(CORPUS_VALUES))
def test_corpus_value(text: str) -> None:
    """Each corpus date/time text is read as the table says, in UTC, never naive."""
    reading, expected = CORPUS_VALUES[text]
    parsed = parse_datetime(text)
    assert parsed.text == text
    assert parsed.reading is reading
    if expected is None:
        assert parsed.value is None
    else:
        assert parsed.value is not None
        assert parsed.value.tzinfo is UTC
        assert parsed.value.isoformat() == expected


@pytest.mark.parametrize(
    ("text", "instant", "offset"),
    [
        ("2024-02-26T10:15:00+04:00", "2024-02-26T06:15:00+00:00", timedelta(hours=4)),
        ("2024-02-26T10:15:00+0400", "2024-02-26T06:15:00+00:00", timedelta(hours=4)),
        ("2024-02-26T10:15:00+04", "2024-02-26T06:15:00+00:00", timedelta(hours=4)),
        ("2024-02-26T10:15:00-05:30", "2024-02-26T15:45:00+00:00", -timedelta(hours=5, minutes=30)),
        ("2024-02-26T10:15:00.5Z", "2024-02-26T10:15:00.500000+00:00", timedelta(0)),
        ("2024-02-26T10:15:00,25Z", "2024-02-26T10:15:00.250000+00:00", timedelta(0)),
        ("2024-02-26T10:15:00.123456789Z", "2024-02-26T10:15:00.123456+00:00", timedelta(0)),
        ("2024-02-26 10:15:00z", "2024-02-26T10:15:00+00:00", timedelta(0)),
        ("2024-02-26T10:15:00 +01:00", "2024-02-26T09:15:00+00:00", timedelta(hours=1)),
        ("2024-02-26T24:00:00Z", "2024-02-27T00:00:00+00:00", timedelta(0)),
        ("2024-02-26T10:15Z", "2024-02-26T10:15:00+00:00", timedelta(0)),
        ("  2024-02-26T10:15:00Z\n", "2024-02-26T10:15:00+00:00", timedelta(0)),
        ("2024-02-26T10:15:00+14:00", "2024-02-25T20:15:00+00:00", MAX_OFFSET),
    ],
)
def test_zoned_forms(text: str, instant: str, offset: timedelta) -> None:
    """Z, extended and basic offsets, fractions, 24:00 and padding give the exact instant."""
    parsed = parse_datetime(text)
    assert parsed.reading is Reading.ZONED
    assert parsed.value is not None
    assert parsed.value.isoformat() == instant
    assert parsed.offset == offset
    assert parsed.text == text


@pytest.mark.parametrize(
    ("text", "reading", "instant"),
    [
        ("2024-02-26T10:15:00", Reading.NO_ZONE, "2024-02-26T10:15:00+00:00"),
        ("2024-02-26T10:15", Reading.NO_ZONE, "2024-02-26T10:15:00+00:00"),
        ("2024-02-26", Reading.DATE_ONLY, "2024-02-26T00:00:00+00:00"),
        ("2024-02-26+05:00", Reading.DATE_ONLY, "2024-02-25T19:00:00+00:00"),
        ("2024-02-26Z", Reading.DATE_ONLY, "2024-02-26T00:00:00+00:00"),
    ],
)
def test_unzoned_and_date_only_forms(text: str, reading: Reading, instant: str) -> None:
    """A missing zone is read as UTC and said so; a date is its first instant."""
    parsed = parse_datetime(text)
    assert parsed.reading is reading
    assert parsed.value is not None
    assert parsed.value.isoformat() == instant


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30T10:00:00Z",
        "2024-13-01",
        "2024-02-26T25:00:00Z",
        "2024-02-26T23:59:60Z",
        "2024-02-26T10:00:00+15:00",
        "2024-02-26T10:00:00+01:60",
        "0000-01-01",
        "2024-W09-1",
        "20240226",
        "26/02/2024",
        "2024-02-26T10:00:00ZZ",
        "٢٠٢٤-٠٢-٢٦",
        "not a date",
    ],
)
def test_unparseable(text: str) -> None:
    """What is not an ISO 8601 date or date-time is unparseable, not guessed."""
    parsed = parse_datetime(text)
    assert parsed.reading is Reading.UNPARSEABLE
    assert parsed.value is None
    assert parsed.text == text


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty(text: str | None) -> None:
    """An absent or blank value is empty, with no instant."""
    parsed = parse_datetime(text)
    assert parsed.reading is Reading.EMPTY
    assert parsed.value is None
    assert not parsed.ok


@pytest.mark.parametrize(
    ("text", "fmt", "instant", "reading"),
    [
        ("20240226", "102", "2024-02-26T00:00:00+00:00", Reading.DATE_ONLY),
        ("202402261015", "203", "2024-02-26T10:15:00+00:00", Reading.NO_ZONE),
        ("20240226101530", "204", "2024-02-26T10:15:30+00:00", Reading.NO_ZONE),
        ("202402261015+0100", "205", "2024-02-26T09:15:00+00:00", Reading.ZONED),
        ("2024-02-26T10:15:00Z", "204", "2024-02-26T10:15:00+00:00", Reading.ZONED),
        ("2024-02-26T10:15:00Z", "999", "2024-02-26T10:15:00+00:00", Reading.ZONED),
    ],
)
def test_uncl_2379_formats(text: str, fmt: str, instant: str, reading: Reading) -> None:
    """A DateTimeString's format 102/203/204/205 is honoured; ISO text is read whatever it says."""
    parsed = parse_datetime(text, fmt)
    assert parsed.reading is reading
    assert parsed.value is not None
    assert parsed.value.isoformat() == instant


def _element(inner: str) -> etree._Element:
    return etree.fromstring(
        f'<r:IssueDateTime xmlns:r="{RAM}" xmlns:u="{UDT}">{inner}</r:IssueDateTime>'
    )


@pytest.mark.parametrize(
    ("inner", "instant"),
    [
        ("<u:DateTimeString>2024-02-26T10:15:00Z</u:DateTimeString>", "2024-02-26T10:15:00+00:00"),
        ('<u:DateTimeString format="102">20240226</u:DateTimeString>', "2024-02-26T00:00:00+00:00"),
        ("<u:DateTime>2024-02-26T10:15:00+01:00</u:DateTime>", "2024-02-26T09:15:00+00:00"),
        ("<u:DateString>2024-02-26</u:DateString>", "2024-02-26T00:00:00+00:00"),
        ("2024-02-26", "2024-02-26T00:00:00+00:00"),
    ],
)
def test_parse_element(inner: str, instant: str) -> None:
    """A date/time element is read from its DateTimeString, DateTime or DateString, or its text."""
    parsed = parse_element(_element(inner))
    assert parsed.value is not None
    assert parsed.value.isoformat() == instant


@given(zoned_datetime_texts())
def test_zoned_text_round_trips(case: tuple[str, datetime]) -> None:
    """Any aware instant written with Z or an offset reads back as that instant, in UTC."""
    text, instant = case
    parsed = parse_datetime(text)
    assert parsed.reading is Reading.ZONED
    assert parsed.value == instant
    assert parsed.value is not None
    assert parsed.value.tzinfo is UTC
    assert parsed.offset == instant.utcoffset()
    assert parsed.text == text


@given(aware_datetimes())
def test_unzoned_text_is_read_as_utc(value: datetime) -> None:
    """The same wall time without a zone is read as that time in UTC and flagged."""
    text = value.replace(tzinfo=None).isoformat()
    parsed = parse_datetime(text)
    assert parsed.reading is Reading.NO_ZONE
    assert parsed.value == value.replace(tzinfo=UTC)


@given(aware_datetimes())
def test_date_text_is_its_first_instant(value: datetime) -> None:
    """A date alone reads as 00:00 UTC of that day."""
    parsed = parse_datetime(value.date().isoformat())
    assert parsed.reading is Reading.DATE_ONLY
    assert parsed.value == datetime.combine(value.date(), datetime.min.time(), UTC)


@given(st.text(max_size=60), st.one_of(st.none(), st.sampled_from(["102", "203", "204", "205"])))
def test_any_text_is_read_or_refused_never_naive(text: str, fmt: str | None) -> None:
    """Whatever the text, parsing returns; a value, when there is one, is aware and in UTC."""
    parsed = parse_datetime(text, fmt)
    assert parsed.text == text
    if parsed.value is None:
        assert parsed.reading in (Reading.EMPTY, Reading.UNPARSEABLE)
    else:
        assert parsed.value.tzinfo is UTC
