"""The hardened reader: hostile and broken input is refused with its own code, fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from greenlane.errors import DocumentRefused
from greenlane.safexml import XmlLimits, parse_bytes, parse_file
from greenlane.settings import Settings
from greenlane.sps.identity import certificate_number
from greenlane.validation import validate_path

from .hostile import CASES, SECRET_MARKER


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_refused_with_its_code(name: str, tmp_path: Path) -> None:
    """Each bad input gets one error finding in area xml, with the code named for it."""
    case = CASES[name]
    path = tmp_path / f"{name}.xml"
    path.write_bytes(case.make(tmp_path))
    started = time.perf_counter()
    result = validate_path(path, Settings())
    elapsed = time.perf_counter() - started
    assert [(f.level.value, f.area.value, f.code) for f in result.findings] == [
        ("error", "xml", case.code)
    ]
    assert not result.valid
    assert not result.unreadable
    assert SECRET_MARKER not in result.findings[0].message
    assert elapsed < 1.0


def test_codes_are_distinct() -> None:
    """No two bad inputs share a code: each says precisely what was wrong."""
    codes = [case.code for case in CASES.values()]
    assert len(codes) == len(set(codes))


def test_a_plain_doctype_is_refused_not_ignored() -> None:
    """Even a harmless DOCTYPE with no declarations is refused."""
    with pytest.raises(DocumentRefused) as refused:
        parse_bytes(b"<!DOCTYPE r>\n<r/>")
    assert refused.value.code == "xml.doctype"


def test_doctype_in_utf16_is_refused_after_parsing() -> None:
    """The prolog scan cannot read UTF-16; the parsed tree is checked again."""
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16")
    with pytest.raises(DocumentRefused) as refused:
        parse_bytes(data)
    assert refused.value.code == "xml.doctype"


def test_size_limit() -> None:
    """Input over the configured size is refused before it is parsed whole."""
    with pytest.raises(DocumentRefused) as refused:
        parse_bytes(b"<r>" + b"x" * 5000 + b"</r>", XmlLimits(max_bytes=4096))
    assert refused.value.code == "xml.too-large"


def test_configured_depth_limit() -> None:
    """Nesting past the configured depth is refused, below libxml2's own limit."""
    limits = XmlLimits(max_depth=10)
    parse_bytes(b"<a>" * 10 + b"</a>" * 10, limits)
    with pytest.raises(DocumentRefused) as refused:
        parse_bytes(b"<a>" * 11 + b"</a>" * 11, limits)
    assert refused.value.code == "xml.too-deep"


def test_configured_text_limit_covers_attributes() -> None:
    """A long attribute value is held to the same limit as text, and its element named."""
    limits = XmlLimits(max_text_chars=2000)
    with pytest.raises(DocumentRefused) as refused:
        parse_bytes(b'<r><b v="' + b"x" * 2001 + b'"/></r>', limits)
    assert refused.value.code == "xml.text-too-long"
    assert refused.value.finding.path == "/r/b"


def test_streamed_file_keeps_exact_bytes(tmp_path: Path, corpus: Path) -> None:
    """A file read in chunks comes back byte for byte (signatures are over bytes)."""
    source = corpus / "ephyto/mattilsynet/SPSCertificateContent.xml"
    document = parse_file(source)
    assert document.raw == source.read_bytes()


def test_reader_is_reusable_after_a_refusal() -> None:
    """A refusal mid-parse leaves the next document unaffected."""
    with pytest.raises(DocumentRefused):
        parse_bytes(b"<a><b>")
    assert parse_bytes(b"<ok/>").root.tag == "ok"


def test_every_corpus_certificate_is_read(corpus: Path) -> None:
    """Every real certificate in the corpus passes the hardened reader, bytes intact."""
    files = sorted(p for p in (corpus / "ephyto").rglob("*") if p.is_file())
    assert len(files) >= 16
    for path in files:
        document = parse_file(path)
        assert document.raw == path.read_bytes()
        assert certificate_number(document.root)
