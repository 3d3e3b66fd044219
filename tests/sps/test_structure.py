"""Our structural validator agrees with the official XSD, and says precisely where and why."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from lxml import etree

from greenlane.findings import Area, Level, has_errors
from greenlane.sps.structure import PATH_NAMESPACES, check_structure
from tests.conftest import CORPUS
from tests.sps.xsd_oracle import xsd_accepts
from tests.strategies import corpus_documents, mutated_certificates

RSM = PATH_NAMESPACES["rsm"]
RAM = PATH_NAMESPACES["ram"]
DS = PATH_NAMESPACES["ds"]
CORPUS_FILES = sorted(p for p in (CORPUS / "ephyto").rglob("*") if p.is_file())
MATTILSYNET = CORPUS / "ephyto" / "mattilsynet" / "SPSCertificateContent.xml"
SIGNED = CORPUS / "ephyto" / "intercom" / "SPSCertificate-signed.xml"
SMALL = CORPUS / "ephyto" / "agrocalidad" / "491412333BO.xml"
PLAIN = CORPUS / "ephyto" / "intercom" / "SPSCertificate.xml"


def _findings(root: etree._Element) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in check_structure(root)]


def _resolve(root: etree._Element, path: str) -> etree._Element:
    hits = root.getroottree().xpath(path, namespaces=PATH_NAMESPACES)
    assert isinstance(hits, list), path
    assert len(hits) == 1, path
    element = hits[0]
    assert isinstance(element, etree._Element)
    return element


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_verdict_equals_the_official_xsd_on_every_corpus_certificate(path: object) -> None:
    """Each real certificate is valid for us exactly when lxml's XMLSchema accepts it."""
    assert isinstance(path, type(MATTILSYNET))
    data = path.read_bytes()
    ours = check_structure(etree.fromstring(data))
    assert has_errors(ours) != xsd_accepts(data), [f.to_dict() for f in ours]


def test_only_the_mattilsynet_fixture_is_invalid_and_every_finding_is_a_structure_error() -> None:
    """The one non-conformant corpus document gets findings; all are error-level structure."""
    invalid = [p.name for p in CORPUS_FILES if check_structure(etree.parse(str(p)).getroot())]
    assert invalid == [MATTILSYNET.name]
    for f in check_structure(etree.parse(str(MATTILSYNET)).getroot()):
        assert f.level is Level.ERROR
        assert f.area is Area.STRUCTURE
        assert f.code.startswith("structure.")


def test_the_misordered_element_at_line_127_is_named_by_its_path() -> None:
    """The XSD rejects the fixture at line 127 (TransitSPSCountry before ConsignorSPSParty)."""
    root = etree.parse(str(MATTILSYNET)).getroot()
    findings = check_structure(root)
    at_127 = [f for f in findings if _resolve(root, f.path).sourceline == 127]
    assert at_127, [f.to_dict() for f in findings]
    assert at_127[0].code == "structure.order"
    assert at_127[0].path == "/rsm:SPSCertificate/rsm:SPSConsignment/ram:TransitSPSCountry[1]"
    assert "ram:ConsignorSPSParty" in at_127[0].message


def test_paths_use_standard_prefixes_and_positions_where_elements_repeat() -> None:
    """A misordered classification is addressed by positions under the standard prefixes."""
    root = etree.parse(str(PLAIN)).getroot()
    item = root.find(f"{{{RSM}}}SPSConsignment/{{{RAM}}}IncludedSPSConsignmentItem")
    assert item is not None
    line = item.find(f"{{{RAM}}}IncludedSPSTradeLineItem")
    assert line is not None
    classification = line.find(f"{{{RAM}}}ApplicableSPSClassification")
    assert classification is not None
    line.remove(classification)
    line.insert(0, classification)
    found = check_structure(root)
    assert found[0].code == "structure.order"
    assert found[0].path == (
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem[1]"
        "/ram:IncludedSPSTradeLineItem[1]/ram:ApplicableSPSClassification[1]"
    )
    assert _resolve(root, found[0].path) is classification


def test_a_missing_required_element_is_reported_at_its_parent() -> None:
    """Removing the required SPSConsignment gives structure.missing on the root."""
    root = etree.parse(str(SMALL)).getroot()
    consignment = root.find(f"{{{RSM}}}SPSConsignment")
    assert consignment is not None
    root.remove(consignment)
    found = check_structure(root)
    assert [(f.code, f.path) for f in found] == [("structure.missing", "/rsm:SPSCertificate")]
    assert "rsm:SPSConsignment" in found[0].message


def test_an_unknown_element_a_duplicate_and_a_bad_code_each_have_their_code() -> None:
    """Unexpected, too-many and enumeration findings point at the element concerned."""
    root = etree.parse(str(SMALL)).getroot()
    document = root.find(f"{{{RSM}}}SPSExchangedDocument")
    assert document is not None
    type_code = document.find(f"{{{RAM}}}TypeCode")
    assert type_code is not None
    type_code.text = "8510"
    type_code.addnext(copy.deepcopy(type_code))
    document.append(etree.Element(f"{{{RAM}}}Colour"))
    codes = [code for code, _path in _findings(root)]
    assert codes == [
        "structure.enumeration",
        "structure.too-many",
        "structure.enumeration",
        "structure.unexpected",
    ]


@pytest.mark.parametrize(
    ("value", "code"),
    [("12,5", "structure.type"), ("", "structure.type"), (" 12.50\n", None), ("-.5", None)],
)
def test_decimal_measures_follow_the_xsd_lexical_space(value: str, code: str | None) -> None:
    """A weight must be an xsd:decimal; surrounding whitespace is collapsed, commas are not."""
    root = etree.parse(str(SMALL)).getroot()
    weight = next(root.iter(f"{{{RAM}}}NetWeightMeasure"))
    weight.text = value
    assert [c for c, _ in _findings(root)] == ([code] if code else [])


def test_attributes_are_typed_required_fixed_and_known() -> None:
    """Signature attributes: a required Algorithm, an anyURI, unique IDs, no strangers."""
    root = etree.parse(str(SIGNED)).getroot()
    method = next(root.iter(f"{{{DS}}}SignatureMethod"))
    del method.attrib["Algorithm"]
    digest = next(root.iter(f"{{{DS}}}DigestMethod"))
    digest.set("Algorithm", "%zz")
    signature = next(root.iter(f"{{{DS}}}Signature"))
    signature.set("Id", "s1")
    next(root.iter(f"{{{DS}}}SignedInfo")).set("Id", "s1")
    signature.set("Colour", "blue")
    codes = sorted(c for c, _ in _findings(root))
    assert codes == [
        "structure.attribute-missing",
        "structure.attribute-unexpected",
        "structure.duplicate-id",
        "structure.type",
    ]


def test_a_fixed_attribute_must_keep_its_value() -> None:
    """qdt:DocumentCodeType fixes listID to 1001; another value is structure.attribute-fixed."""
    root = etree.parse(str(SMALL)).getroot()
    type_code = next(root.iter(f"{{{RAM}}}TypeCode"))
    type_code.set("listID", " 1001 ")
    assert _findings(root) == []
    type_code.set("listID", "1002")
    assert [c for c, _ in _findings(root)] == ["structure.attribute-fixed"]


def test_text_in_element_only_content_is_refused() -> None:
    """Characters between elements of an element-only type are structure.text at the parent."""
    root = etree.parse(str(SMALL)).getroot()
    document = root.find(f"{{{RSM}}}SPSExchangedDocument")
    assert document is not None
    document[0].tail = "stray"
    assert _findings(root) == [("structure.text", "/rsm:SPSCertificate/rsm:SPSExchangedDocument")]


def test_text_after_a_comment_is_reported_at_the_parent_before_its_children() -> None:
    """Text after a comment in element-only content: structure.text, in document order, once."""
    root = etree.parse(str(SMALL)).getroot()
    document = root.find(f"{{{RSM}}}SPSExchangedDocument")
    assert document is not None
    comment = etree.Comment("note")
    comment.tail = "stray"
    document.append(comment)
    document[0].tail = "more"
    document[0].text = ""
    document[0].append(etree.Element(f"{{{RAM}}}Inner"))
    assert _findings(root) == [
        ("structure.text", "/rsm:SPSCertificate/rsm:SPSExchangedDocument"),
        (
            "structure.unexpected",
            "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ID/ram:Inner[1]",
        ),
    ]


def test_a_comment_inside_a_code_splits_nothing() -> None:
    """A comment in simple content is ignored: the value is the text around it, joined."""
    root = etree.parse(str(SMALL)).getroot()
    type_code = next(root.iter(f"{{{RAM}}}TypeCode"))
    type_code.text = "85"
    comment = etree.Comment("x")
    comment.tail = "1"
    type_code.append(comment)
    assert _findings(root) == []
    comment.tail = "9"
    assert [c for c, _ in _findings(root)] == ["structure.enumeration"]


def test_signature_wildcards_are_strict_lax_or_skip_as_the_xmldsig_schema_says() -> None:
    """Undeclared elements: refused by a strict wildcard, ignored by a lax ##other one."""
    data = SIGNED.read_bytes()
    root = etree.fromstring(data)
    next(root.iter(f"{{{DS}}}CanonicalizationMethod")).append(etree.Element("undeclared"))
    assert [c for c, _ in _findings(root)] == ["structure.undeclared"]
    root = etree.fromstring(data)
    next(root.iter(f"{{{DS}}}KeyInfo")).append(etree.Element("{urn:example}undeclared"))
    assert _findings(root) == []
    next(root.iter(f"{{{DS}}}KeyInfo")).append(etree.Element("no-namespace"))
    assert [c for c, _ in _findings(root)] == ["structure.unexpected"]


@given(mutated_certificates())
def test_verdict_equals_the_official_xsd_on_mutated_certificates(data: bytes) -> None:
    """Removed, duplicated, swapped, moved, retyped or recoded: we agree with the XSD's verdict."""
    ours = check_structure(etree.fromstring(data))
    assert (not has_errors(ours)) == xsd_accepts(data), [f.to_dict() for f in ours]


def test_the_corpus_strategy_sees_every_certificate() -> None:
    """The mutants start from all corpus documents (signed and unsigned, valid and not)."""
    assert len(corpus_documents()) == len(CORPUS_FILES)


@pytest.mark.parametrize("with_comment", [False, True], ids=["plain", "with-comments"])
def test_an_element_inside_a_text_leaf_is_unexpected(with_comment: bool) -> None:
    """Simple content may not hold elements, whether or not the document has comments."""
    root = etree.parse(str(SMALL)).getroot()
    if with_comment:
        root.append(etree.Comment("anywhere"))
    document_id = next(root.iter(f"{{{RAM}}}ID"))
    document_id.append(etree.Element(f"{{{RAM}}}Inner"))
    assert _findings(root) == [
        ("structure.unexpected", "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ID/ram:Inner[1]")
    ]
