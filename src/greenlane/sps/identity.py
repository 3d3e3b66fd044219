"""What an SPS certificate is, read from its root: namespaces, type and number."""

from __future__ import annotations

from lxml import etree

RSM = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"
ROOT = etree.QName(RSM, "SPSCertificate")

_DOCUMENT = f"{{{RSM}}}SPSExchangedDocument"
_ID = f"{{{RAM}}}ID"


def certificate_number(root: etree._Element) -> str | None:
    """The certificate's ID (the first SPSExchangedDocument/ID), or None when it has none.

    Read on every document judged: a loop over the children costs a fraction of
    ``find()`` with a path, which goes through ElementPath in Python.
    """
    for document in root.iterchildren(_DOCUMENT):
        for element in document.iterchildren(_ID):
            text = element.text
            return (text.strip() or None) if text else None
    return None
