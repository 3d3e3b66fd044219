"""Built-in XSD lexical spaces are judged exactly as libxml2 judges them."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from greenlane.sps.lexical import builtin_lexical

BUILTINS = [
    "decimal",
    "integer",
    "nonNegativeInteger",
    "boolean",
    "dateTime",
    "date",
    "time",
    "base64Binary",
    "hexBinary",
    "anyURI",
    "ID",
    "NCName",
    "language",
    "double",
]
SEEDS = {
    "decimal": ["1", "-1.5", ".5", "0.", "+3"],
    "integer": ["12", "-0", "+7"],
    "nonNegativeInteger": ["0", "5"],
    "boolean": ["true", "false", "1", "0"],
    "dateTime": ["2016-04-22T13:53:08-03:00", "2000-02-29T24:00:00", "-0004-02-29T00:00:00.5Z"],
    "date": ["2016-04-22", "2016-04-22+01:00"],
    "time": ["13:53:08", "24:00:00Z"],
    "base64Binary": ["QUFB", "QQ==", "QUE=", "Q U F B"],
    "hexBinary": ["0A", "ab"],
    "anyURI": ["http://a.b/c?d#e", "urn:x:y", "//h:80/p", "mailto:a@b", "http://[::1]:8080/"],
    "ID": ["a1", "_x", "a.b-c"],
    "NCName": ["abc"],
    "language": ["en", "en-US"],
    "double": ["1e5", "NaN", "-INF", "1."],
}
NOISE = [*"0123456789-+:.TZ eE/#?%@[]_aAzZ=\t\n\r", "é", "\u00a0"]


@cache
def _schema() -> etree.XMLSchema:
    choices = "".join(f'<xs:element name="{t}" type="xs:{t}"/>' for t in BUILTINS)
    return etree.XMLSchema(
        etree.fromstring(
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t" '
            'elementFormDefault="qualified"><xs:element name="r"><xs:complexType><xs:choice>'
            f"{choices}</xs:choice></xs:complexType></xs:element></xs:schema>"
        )
    )


def libxml2_accepts(builtin: str, value: str) -> bool:
    root = etree.Element("{urn:t}r")
    etree.SubElement(root, f"{{urn:t}}{builtin}").text = value
    return bool(_schema().validate(root))


@st.composite
def near_values(draw: st.DrawFn) -> tuple[str, str]:
    builtin = draw(st.sampled_from(BUILTINS))
    chars = list(draw(st.sampled_from(SEEDS[builtin])))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(chars)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert" or not chars:
            chars.insert(at, draw(st.sampled_from(NOISE)))
        elif op == "delete":
            del chars[min(at, len(chars) - 1)]
        else:
            chars[min(at, len(chars) - 1)] = draw(st.sampled_from(NOISE))
    return builtin, "".join(chars)


@given(near_values())
def test_builtin_lexical_spaces_agree_with_libxml2(case: tuple[str, str]) -> None:
    """Values near valid ones (a character inserted, dropped or changed) get libxml2's verdict."""
    builtin, value = case
    assert builtin_lexical(builtin)(value) == libxml2_accepts(builtin, value), repr(value)


@pytest.mark.parametrize(
    ("builtin", "value", "valid"),
    [
        ("dateTime", " 2016-04-22T13:53:08Z", False),
        ("dateTime", "2016-04-22T13:53:08Z ", True),
        ("dateTime", "2016-04-22T13:53:08 ", False),
        ("dateTime", "2016-04-22T23:59:59.99999999999999", False),
        ("base64Binary", "!!", True),
        ("base64Binary", "QR==", False),
        ("anyURI", "a b", True),
        ("anyURI", "%zz", False),
    ],
)
def test_libxml2_quirks_are_followed(builtin: str, value: str, valid: bool) -> None:
    """Where libxml2 departs from XML Schema Part 2, greenlane follows libxml2 (the oracle)."""
    assert builtin_lexical(builtin)(value) is valid
    assert libxml2_accepts(builtin, value) is valid
