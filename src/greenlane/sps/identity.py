"""What an SPS certificate is, read from its root: namespaces, type and number."""

from __future__ import annotations

from lxml import etree

RSM = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"
ROOT = etree.QName(RSM, "SPSCertificate")

_ID = f"{{{RSM}}}SPSExchangedDocument/{{{RAM}}}ID"


def certificate_number(root: etree._Element) -> str | None:
    """The certificate's ID (SPSExchangedDocument/ID), or None when it has none."""
    element = root.find(_ID)
    if element is None or not element.text:
        return None
    return element.text.strip() or None
