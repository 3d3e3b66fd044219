"""The official XSD as the oracle of the agreement tests (tests may read ../shared)."""

from __future__ import annotations

from functools import cache

from lxml import etree

from tests.conftest import SHARED

SCHEMA_DIR = SHARED / "corpus" / "schemas" / "sps"
ENTRY = SCHEMA_DIR / "data" / "standard" / "SPSCertificate_17p0.xsd"


@cache
def official_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(ENTRY)))


def xsd_accepts(data: bytes) -> bool:
    """The official verdict on ``data``, parsed afresh (XSD validation registers IDs on a tree)."""
    return bool(official_schema().validate(etree.fromstring(data)))
