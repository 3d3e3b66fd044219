"""Reading and writing certificates: faithful and canonical XML, the JSON form, and back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from greenlane.errors import DocumentRefused
from greenlane.safexml import parse_bytes, parse_file
from greenlane.sps.jsonform import JsonFormError, from_json, to_json
from greenlane.sps.nodes import Node, RawXml
from greenlane.sps.reader import read_certificate
from greenlane.sps.writer import NotCanonical, write_canonical, write_faithful

from .equivalence import difference

CORPUS_FILES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2].parent / "shared/corpus/ephyto").rglob("*")
    if p.is_file()
)
MISORDERED = "SPSCertificateContent.xml"


def _model(path: Path) -> Node:
    return read_certificate(parse_file(path)).root


@pytest.fixture(scope="module")
def schema(corpus: Path) -> etree.XMLSchema:
    return etree.XMLSchema(
        etree.parse(str(corpus / "schemas/sps/data/standard/SPSCertificate_17p0.xsd"))
    )


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_faithful_xml_round_trip(path: Path) -> None:
    """Every corpus certificate written faithfully is equivalent to what was read."""
    original = parse_file(path).root
    written = parse_bytes(write_faithful(_model(path))).root
    assert difference(original, written) is None


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_xml_json_xml_round_trip(path: Path) -> None:
    """XML -> JSON text -> XML gives back an equivalent document, misordered ones included."""
    original = parse_file(path).root
    data = json.loads(json.dumps(to_json(_model(path)), ensure_ascii=False))
    written = parse_bytes(write_faithful(from_json(data))).root
    assert difference(original, written) is None


@pytest.mark.parametrize(
    "path", [p for p in CORPUS_FILES if p.name != MISORDERED], ids=lambda p: p.name
)
def test_canonical_output_is_schema_valid(path: Path, schema: etree.XMLSchema) -> None:
    """The canonical writer's output of a corpus certificate is accepted by the official XSD."""
    written = write_canonical(_model(path))
    assert schema.validate(etree.fromstring(written)), schema.error_log


def test_canonical_writer_refuses_what_it_cannot_make_valid(corpus: Path) -> None:
    """Norway's certificate holds text and a note where the schema allows neither: refused."""
    with pytest.raises(NotCanonical):
        write_canonical(_model(corpus / f"ephyto/mattilsynet/{MISORDERED}"))


def test_text_is_kept_as_written(corpus: Path) -> None:
    """A weight written 10.00 stays 10.00 in the model, the JSON and the XML."""
    path = corpus / "ephyto/agrocalidad/491412333BO.xml"
    model = _model(path)
    data = to_json(model)
    line = data["SPSCertificate"]["SPSConsignment"]["IncludedSPSConsignmentItem"][0][
        "IncludedSPSTradeLineItem"
    ][0]
    assert line["NetWeightMeasure"] == {"value": "10.00", "@unitCode": "KGM"}
    assert b">10.00<" in write_faithful(model)


def test_misordered_document_keeps_its_order(corpus: Path) -> None:
    """The JSON of an out-of-order document records the order it was read in."""
    model = _model(corpus / f"ephyto/mattilsynet/{MISORDERED}")
    text = json.dumps(to_json(model))
    assert '"#order"' in text


def test_an_element_out_of_place_is_kept_and_canonical_refuses(corpus: Path) -> None:
    """An unknown element survives a faithful round trip; the canonical writer will not emit it."""
    root = parse_file(corpus / "ephyto/agrocalidad/491412333BO.xml").root
    exchanged = root[0]
    stranger = etree.SubElement(exchanged, "{urn:example:national}LocalReference")
    stranger.text = "X-42"
    model = read_certificate(parse_bytes(etree.tostring(root))).root
    assert model.sps_exchanged_document.extra == [  # type: ignore[attr-defined]
        RawXml(etree.tostring(stranger, with_tail=False))
    ]
    again = parse_bytes(write_faithful(from_json(json.loads(json.dumps(to_json(model)))))).root
    assert difference(root, again) is None
    with pytest.raises(NotCanonical):
        write_canonical(model)


@pytest.mark.parametrize(
    ("data", "code", "pointer"),
    [
        ({"SPSCertificate": {"Nonsense": "x"}}, "json.unknown-field", "/SPSCertificate/Nonsense"),
        (
            {"SPSCertificate": {"SPSExchangedDocument": []}},
            "json.type",
            "/SPSCertificate/SPSExchangedDocument",
        ),
        ({"Other": {}}, "json.type", "/"),
        (
            {"SPSCertificate": {"SPSExchangedDocument": {"ID": 7}}},
            "json.type",
            "/SPSCertificate/SPSExchangedDocument/ID",
        ),
        (
            {"SPSCertificate": {"#order": ["SPSConsignment"]}},
            "json.order",
            "/SPSCertificate/#order",
        ),
    ],
)
def test_bad_json_is_refused_with_a_pointer(data: object, code: str, pointer: str) -> None:
    """JSON of the wrong shape is refused with a stable code and a pointer to the problem."""
    with pytest.raises(JsonFormError) as refused:
        from_json(data)
    assert refused.value.code == code
    assert refused.value.finding.path == pointer


def test_json_extra_is_read_with_the_hardened_reader() -> None:
    """XML text inside the JSON form is untrusted too: a DOCTYPE in it is refused."""
    bomb = {"SPSCertificate": {"#extra": ['<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>']}}
    model = from_json(bomb)
    with pytest.raises(DocumentRefused) as refused:
        write_faithful(model)
    assert refused.value.code == "xml.entity-expansion"
