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

    Read on every document judged: a plain loop over the children costs a
    fraction of ``find()`` with a path (ElementPath, in Python) or of a tag
    filter (which lxml sets up anew on each call); the ID comes early.
    """
    for document in root:
        if document.tag == _DOCUMENT:
            for element in document:
                if element.tag == _ID:
                    text = element.text
                    return (text.strip() or None) if text else None
    return None
