"""What greenlane issues: the demo certificates, written canonically, are valid by every measure."""

from __future__ import annotations

import pytest

from greenlane.cli.demo_certificates import LOTS, Lot, certificate
from greenlane.findings import has_errors
from greenlane.safexml import parse_bytes
from greenlane.settings import Settings
from greenlane.sps.checks import check_certificate
from greenlane.sps.jsonform import from_json, to_json
from greenlane.sps.reader import read_certificate
from greenlane.sps.structure import check_structure
from greenlane.sps.writer import write_canonical

from .xsd_oracle import xsd_accepts


@pytest.mark.parametrize("lot", LOTS, ids=lambda lot: lot.number)
def test_issued_certificate_is_valid_everywhere(lot: Lot) -> None:
    """The official XSD, our structure check and the rules all accept an issued certificate."""
    written = write_canonical(from_json(certificate(lot)))
    assert xsd_accepts(written)
    document = parse_bytes(written)
    assert check_structure(document.root) == []
    findings = check_certificate(document, Settings())
    assert not has_errors(findings), findings
    assert [f for f in findings if f.level.value == "warning"] == []


@pytest.mark.parametrize("lot", LOTS, ids=lambda lot: lot.number)
def test_canonical_writing_is_stable(lot: Lot) -> None:
    """Reading an issued certificate and writing it canonically again gives the same bytes."""
    written = write_canonical(from_json(certificate(lot)))
    again = write_canonical(read_certificate(parse_bytes(written)).root)
    assert again == written
    assert to_json(read_certificate(parse_bytes(written)).root) == certificate(lot)
