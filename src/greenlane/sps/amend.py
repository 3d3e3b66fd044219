"""What the exchange reads from a certificate's header, and the two changes an issuer makes.

An issuing NPPO changes a certificate it has sent in two ways only: it
*withdraws* it (the same certificate, StatusCode 40, signed again) or it
*replaces* it with a new certificate that says which one it replaces, in four
``IncludedSPSNote`` entries as the ePhyto guidelines name them (the INTERCOM
sample certificates in the corpus carry them):

- ``ADRP``: the replacement declaration (the IPPC model certificate's wording);
- ``ADRPN``: the number of the certificate replaced;
- ``ADRPR``: the reason;
- ``ADRD``: the issue date of the certificate replaced, as it was written.

Both changes drop the old enveloped signature: the result is signed afresh
by the agency (:func:`greenlane.trust.xmldsig.sign_enveloped`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from greenlane.safexml import XmlDocument, parse_bytes
from greenlane.sps.identity import RAM, RSM, UDT

DSIG: Final = "http://www.w3.org/2000/09/xmldsig#"
_DOC: Final = f"{{{RSM}}}SPSExchangedDocument"
_CONSIGNMENT: Final = f"{{{RSM}}}SPSConsignment"
_SIGNATURE: Final = f"{{{DSIG}}}Signature"
_NOTE: Final = f"{{{RAM}}}IncludedSPSNote"
_AFTER_NOTES: Final = (
    f"{{{RAM}}}ReferenceSPSReferencedDocument",
    f"{{{RAM}}}SignatorySPSAuthentication",
)
REPLACEMENT_SUBJECTS: Final = ("ADRP", "ADRPN", "ADRPR", "ADRD")


class AmendError(ValueError):
    """The certificate lacks what the change needs (no header, no status to change)."""


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """The header facts the exchange routes and tracks by; None where the document has none."""

    number: str | None
    type_code: str | None
    status_code: str | None
    issued: str | None
    """IssueDateTime exactly as written."""
    export_country: str | None
    import_country: str | None
    replaces: str | None
    """The ADRPN note: the number of the certificate this one replaces."""
    signed: bool
    """The root carries an enveloped ds:Signature."""


def _child(parent: etree._Element | None, tag: str) -> etree._Element | None:
    if parent is None:
        return None
    for element in parent:
        if element.tag == tag:
            return element
    return None


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _issued(document: etree._Element | None) -> str | None:
    element = _child(document, f"{{{RAM}}}IssueDateTime")
    if element is None:
        return None
    inner = _child(element, f"{{{UDT}}}DateTimeString")
    return _text(inner if inner is not None else element)


def _notes(document: etree._Element | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if document is None:
        return found
    for note in document:
        if note.tag != _NOTE:
            continue
        subject = _text(_child(note, f"{{{RAM}}}Subject"))
        content = _text(_child(note, f"{{{RAM}}}Content"))
        if subject and content and subject not in found:
            found[subject] = content
    return found


def facts(root: etree._Element) -> CertificateFacts:
    """The header facts of a parsed SPSCertificate (a plain walk: read per document)."""
    document = _child(root, _DOC)
    consignment = _child(root, _CONSIGNMENT)
    notes = _notes(document)
    return CertificateFacts(
        number=_text(_child(document, f"{{{RAM}}}ID")),
        type_code=_text(_child(document, f"{{{RAM}}}TypeCode")),
        status_code=_text(_child(document, f"{{{RAM}}}StatusCode")),
        issued=_issued(document),
        export_country=_text(
            _child(_child(consignment, f"{{{RAM}}}ExportSPSCountry"), f"{{{RAM}}}ID")
        ),
        import_country=_text(
            _child(_child(consignment, f"{{{RAM}}}ImportSPSCountry"), f"{{{RAM}}}ID")
        ),
        replaces=notes.get("ADRPN"),
        signed=any(e.tag == _SIGNATURE for e in root),
    )


def _unsigned(data: bytes) -> XmlDocument:
    document = parse_bytes(data)
    for signature in [e for e in document.root if e.tag == _SIGNATURE]:
        document.root.remove(signature)
    return document


def _bytes(document: XmlDocument) -> bytes:
    return etree.tostring(document.root.getroottree(), xml_declaration=True, encoding="UTF-8")


def without_signature(data: bytes) -> bytes:
    """The certificate in ``data`` with its enveloped signature taken out, re-serialised."""
    return _bytes(_unsigned(data))


def with_status(data: bytes, status: str) -> bytes:
    """The certificate in ``data`` with StatusCode ``status`` and no signature (to be re-signed)."""
    document = _unsigned(data)
    element = _child(_child(document.root, _DOC), f"{{{RAM}}}StatusCode")
    if element is None:
        raise AmendError("the certificate has no SPSExchangedDocument/StatusCode to change")
    element.text = status
    return _bytes(document)


def as_replacement(
    data: bytes, *, replaced_number: str, replaced_issued: str, reason: str
) -> bytes:
    """The new certificate in ``data`` with the four replacement notes, unsigned.

    Any replacement notes it already carries are dropped first, so a certificate
    names exactly one certificate it replaces.
    """
    document = _unsigned(data)
    header = _child(document.root, _DOC)
    if header is None:
        raise AmendError("the certificate has no SPSExchangedDocument")
    for note in [n for n in header if n.tag == _NOTE]:
        if _text(_child(note, f"{{{RAM}}}Subject")) in REPLACEMENT_SUBJECTS:
            header.remove(note)
    position = len(header)
    for index, element in enumerate(header):
        if element.tag in _AFTER_NOTES:
            position = index
            break
    declaration = (
        f"This certificate replaces and cancels certificate No. {replaced_number} "
        f"issued on {replaced_issued}."
    )
    for offset, (subject, content) in enumerate(
        (
            ("ADRP", declaration),
            ("ADRPN", replaced_number),
            ("ADRPR", reason),
            ("ADRD", replaced_issued),
        )
    ):
        note = etree.Element(_NOTE)
        etree.SubElement(note, f"{{{RAM}}}Subject").text = subject
        etree.SubElement(note, f"{{{RAM}}}Content").text = content
        header.insert(position + offset, note)
    return _bytes(document)
