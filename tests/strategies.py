"""Hypothesis strategies, kept in one place for every property test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from hypothesis import strategies as st

from tests.conftest import CORPUS


@cache
def corpus_documents() -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in sorted((CORPUS / "ephyto").rglob("*")) if p.is_file())


def _mutate(data: bytes, kind: str, position: int, payload: bytes) -> bytes:
    at = position % (len(data) + 1)
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + payload + data[at:]
    if kind == "overwrite":
        return data[:at] + payload + data[at + len(payload) :]
    return data[:at] + data[at + len(payload) :]  # delete


XML_FRAGMENTS = st.sampled_from(
    [
        b"<",
        b">",
        b"&",
        b"&amp;",
        b"<!DOCTYPE x>",
        b"<!ENTITY a 'b'>",
        b"]]>",
        b"<![CDATA[",
        b"\x00",
        b"\xff\xfe",
        b"xmlns:p='u'",
        b"<p:x/>",
        b"</",
        b"<?xml?>",
        b"&#0;",
        b"&#x10FFFF;",
    ]
)


def mutated_corpus_bytes() -> st.SearchStrategy[bytes]:
    """A real certificate, damaged once: truncated, or bytes inserted, overwritten, deleted."""
    return st.builds(
        _mutate,
        st.sampled_from(corpus_documents()),
        st.sampled_from(["truncate", "insert", "overwrite", "delete"]),
        st.integers(min_value=0, max_value=300_000),
        st.one_of(XML_FRAGMENTS, st.binary(min_size=1, max_size=16)),
    )


def any_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(str.encode))


# --- Date/time texts of SPS certificates (tests/sps/test_datetimes.py) ---

# Offsets real zones use: whole hours, halves and quarters, never beyond ±14:00.
ZONE_OFFSETS = st.integers(min_value=-14 * 4, max_value=14 * 4).map(
    lambda quarters: timedelta(minutes=15 * quarters)
)


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """An instant in a fixed-offset zone, from the year 1000 on (certificates are not older)."""
    return st.builds(
        lambda naive, offset: naive.replace(tzinfo=timezone(offset)),
        st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30)),
        ZONE_OFFSETS,
    )


def _render_zone(offset: timedelta, style: str) -> str:
    if style == "Z" and not offset:
        return "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    hours, rest = divmod(minutes, 60)
    return f"{sign}{hours:02d}{'' if style == 'basic' else ':'}{rest:02d}"


def zoned_datetime_texts() -> st.SearchStrategy[tuple[str, datetime]]:
    """(text, instant): an aware datetime written the ways certificates write one."""

    def render(value: datetime, style: str, fraction: int) -> tuple[str, datetime]:
        offset = value.utcoffset() or timedelta(0)
        base = value.strftime("%Y-%m-%dT%H:%M:%S")
        digits = f"{value.microsecond:06d}"[:fraction] if fraction else ""
        text = base + (f".{digits}" if digits else "") + _render_zone(offset, style)
        kept = value.replace(microsecond=int(digits.ljust(6, "0")) if digits else 0)
        return text, kept

    return st.builds(
        render,
        aware_datetimes(),
        st.sampled_from(["Z", "extended", "basic"]),
        st.integers(min_value=0, max_value=6),
    )


# --- Structural mutants of real certificates (tests/sps/test_structure.py, tests/fuzz) ---

_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_DS_NS = "http://www.w3.org/2000/09/xmldsig#"

WRONG_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "abc",
            "12,5",
            "1.5e3",
            "12.5",
            " 12.50 ",
            "-0",
            "+.5",
            ".",
            "NaN",
            "true",
            "TRUE",
            " 1 ",
            "2016-04-22T13:53:08-03:00",
            "2016-04-22T13:53:08",
            " 2016-04-22T13:53:08Z ",
            "2016-04-22T24:00:00",
            "2016-02-30T10:00:00",
            "2016-04-22",
            "13:53:08",
            "2016-04-22T13:53:60Z",
            "2016-04-22T13:53:08+14:30",
            "QUFB",
            "QQ==",
            "QQ=",
            "Q!Q==",
            "http://example.org/a b",
            "%zz",
            "urn:x:y",
            "851",
            " 851\n",
            "85 1",
            "70",
            "EC",
            "ec",
            "XX",
            "KGM",
            "SPSFL",
            "ZZZ",
            "x" * 300,
            "ÿ\u00e9\u4e2d",
        ]
    ),
    st.text(alphabet="0123456789.-+:TZ eEaQ=/ \n", max_size=24),
)

ATTRIBUTE_NAMES = st.sampled_from(
    [
        "languageID",
        "listID",
        "listAgencyID",
        "listVersionID",
        "unitCode",
        "schemeID",
        "schemeAgencyID",
        "currencyID",
        "format",
        "filename",
        "mimeCode",
        "uri",
        "name",
        "foo",
        "Id",
        "Algorithm",
        "URI",
        "{http://www.w3.org/XML/1998/namespace}lang",
        f"{{{_XSI_NS}}}nil",
        f"{{{_XSI_NS}}}type",
        f"{{{_XSI_NS}}}schemaLocation",
    ]
)

ATTRIBUTE_VALUES = st.one_of(
    WRONG_VALUES,
    st.sampled_from(
        ["en", "es", "6", "1001", "D16B", "KGM", "a1", "_x", "1a", "sig-1", "udt:IDType", "false"]
    ),
)

MUTATIONS = (
    "remove",
    "duplicate",
    "swap",
    "move",
    "text",
    "code",
    "attribute-remove",
    "attribute-add",
    "attribute-change",
    "comment",
)


def _mutate_tree(data: st.DataObject, root: Any, kind: str) -> None:
    """Apply one structural mutation of ``kind`` to the tree under ``root``, in place."""
    import copy

    from lxml import etree

    elements = list(root.iter(etree.Element))
    pick = data.draw(st.integers(0, len(elements) - 1), label="element")
    el = elements[pick]
    parent = el.getparent()
    if kind == "remove" and parent is not None:
        parent.remove(el)
    elif kind == "duplicate" and parent is not None:
        el.addnext(copy.deepcopy(el))
    elif kind == "swap" and parent is not None:
        siblings = [s for s in parent if isinstance(s.tag, str) and s is not el]
        if siblings:
            other = siblings[data.draw(st.integers(0, len(siblings) - 1), label="sibling")]
            mine, theirs = parent.index(el), parent.index(other)
            first, second = (el, other) if mine < theirs else (other, el)
            second_tail, first_tail = second.tail, first.tail
            placeholder = etree.Element("placeholder")
            first.addprevious(placeholder)
            second.addprevious(first)
            placeholder.addprevious(second)
            parent.remove(placeholder)
            first.tail, second.tail = second_tail, first_tail
    elif kind == "move" and parent is not None:
        hosts = [h for h in elements if h is not el and not any(a is el for a in h.iterancestors())]
        host = hosts[data.draw(st.integers(0, len(hosts) - 1), label="host")]
        host.insert(data.draw(st.integers(0, len(host)), label="at"), el)
    elif kind in ("text", "code"):
        leaves = [e for e in elements if len(e) == 0]
        if kind == "code":
            leaves = [e for e in leaves if etree.QName(e).localname.endswith(("Code", "ID"))]
        if leaves:
            leaf = leaves[data.draw(st.integers(0, len(leaves) - 1), label="leaf")]
            leaf.text = data.draw(WRONG_VALUES, label="value")
    elif kind == "comment":
        leaves = [e for e in elements if len(e) == 0 and e.text]
        if leaves:
            leaf = leaves[data.draw(st.integers(0, len(leaves) - 1), label="leaf")]
            at = data.draw(st.integers(0, len(leaf.text or "")), label="split")
            text = leaf.text or ""
            leaf.text = text[:at]
            comment = etree.Comment("c")
            comment.tail = text[at:]
            leaf.append(comment)
    elif kind == "attribute-remove" and el.attrib:
        names = sorted(el.attrib)
        del el.attrib[names[data.draw(st.integers(0, len(names) - 1), label="name")]]
    elif kind == "attribute-add":
        name = data.draw(ATTRIBUTE_NAMES, label="name")
        el.set(name, data.draw(ATTRIBUTE_VALUES, label="value"))
    elif kind == "attribute-change" and el.attrib:
        names = sorted(el.attrib)
        name = names[data.draw(st.integers(0, len(names) - 1), label="name")]
        el.set(name, data.draw(ATTRIBUTE_VALUES, label="value"))


@st.composite
def mutated_certificates(draw: st.DrawFn, max_mutations: int = 2) -> bytes:
    """A real certificate changed structurally one to ``max_mutations`` times, as bytes."""
    from lxml import etree

    source = draw(st.sampled_from(corpus_documents()), label="certificate")
    root = etree.fromstring(source)
    data = draw(st.data())
    for _ in range(draw(st.integers(1, max_mutations), label="mutations")):
        _mutate_tree(data, root, draw(st.sampled_from(MUTATIONS), label="kind"))
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))
