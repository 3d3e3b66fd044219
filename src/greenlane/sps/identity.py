"""What an SPS certificate is, read from its root: namespaces, type and number."""

from __future__ import annotations

from lxml import etree

RSM = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"
ROOT = etree.QName(RSM, "SPSCertificate")

_ID = etree.XPath("string(rsm:SPSExchangedDocument/ram:ID)", namespaces={"rsm": RSM, "ram": RAM})


def certificate_number(root: etree._Element) -> str | None:
    """The certificate's ID (SPSExchangedDocument/ID), or None when it has none."""
    value = _ID(root)
    if not isinstance(value, str):
        return None
    return value.strip() or None
