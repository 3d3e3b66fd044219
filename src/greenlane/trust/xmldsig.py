"""XML-DSig enveloped signatures over whole SPS certificates, in one narrow profile.

National ePhyto systems sign the whole certificate with an enveloped
``ds:Signature`` as the last child of the root. A general XML-DSig verifier
accepts far more than that (references to parts of a document, XSLT and XPath
transforms, SHA-1, several references), and each extra is a way to make a
verifier say "valid" about bytes the application then reads differently
(signature wrapping). So we accept exactly one shape:

* one ``ds:Signature``, a child of the document root, holding only SignedInfo,
  SignatureValue and KeyInfo (nothing unsigned an application could read);
* SignedInfo canonicalised with C14N 1.0 or exclusive C14N 1.0;
* RSA PKCS#1 v1.5 or ECDSA with SHA-256/384/512; SHA-1 is refused;
* one Reference to the whole document (``URI=""``, or no URI, which real
  systems emit and which can only mean the document here), transformed by
  enveloped-signature and at most one C14N, digested with SHA-256/384/512;
* the signer's certificate in KeyInfo/X509Data.

Integrity (:func:`verify_enveloped`) says whether the bytes are the ones the
certificate's key signed; trust (:func:`judge_trust`) says whether that key is
one we accept for this certificate. They are separate because a document from
an unknown signer can still be intact, and the officer should see both.

Finding codes are registered in :mod:`greenlane.codes` (areas ``signature`` and ``policy``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from greenlane.codes import finding
from greenlane.errors import DocumentRefused
from greenlane.findings import Finding
from greenlane.safexml import DEFAULT_LIMITS, XmlLimits, parse_bytes
from greenlane.sps.datetimes import parse_element
from greenlane.sps.identity import RAM, RSM
from greenlane.trust.keys import KeyLookup, RegisteredKey, Role, key_id
from greenlane.trust.signers import Algorithm, Signer, TrustError

DS = "http://www.w3.org/2000/09/xmldsig#"
DS11 = "http://www.w3.org/2009/xmldsig11#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS = C14N + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
ENVELOPED = DS + "enveloped-signature"
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_ENC = "http://www.w3.org/2001/04/xmlenc#"

"""Code -> (area, level, meaning) of every finding this module makes."""


def _finding(code: str, message: str, path: str = "") -> Finding:
    return finding(code, message, path)


class _Refused(Exception):
    """The signature leaves the profile; the first reason found is the answer."""

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.finding = _finding(code, message, path)


# --- algorithms ----------------------------------------------------------------------------

_C14N_METHODS = frozenset({C14N, C14N_COMMENTS, EXC_C14N, EXC_C14N_COMMENTS})


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    rsa: bool
    hash: Callable[[], hashes.HashAlgorithm]


_SIGNATURE_METHODS = {
    _MORE + "rsa-sha256": _Method("rsa-sha256", True, hashes.SHA256),
    _MORE + "rsa-sha384": _Method("rsa-sha384", True, hashes.SHA384),
    _MORE + "rsa-sha512": _Method("rsa-sha512", True, hashes.SHA512),
    _MORE + "ecdsa-sha256": _Method("ecdsa-sha256", False, hashes.SHA256),
    _MORE + "ecdsa-sha384": _Method("ecdsa-sha384", False, hashes.SHA384),
    _MORE + "ecdsa-sha512": _Method("ecdsa-sha512", False, hashes.SHA512),
}
_DIGEST_METHODS = {
    _ENC + "sha256": "sha256",
    _MORE + "sha384": "sha384",
    _ENC + "sha512": "sha512",
}
_SIGNING_METHOD = {Algorithm.RS256: _MORE + "rsa-sha256", Algorithm.ES256: _MORE + "ecdsa-sha256"}


def _is_sha1(uri: str) -> bool:
    """rsa-sha1, dsa-sha1, ecdsa-sha1, hmac-sha1 and the sha1 digest all end the same way."""
    return uri.rpartition("#")[2].endswith("sha1")


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerCertificate:
    """Who the certificate in KeyInfo says signed; a claim until :func:`judge_trust`."""

    certificate: x509.Certificate
    name: str
    country: str | None
    key_id: str

    @property
    def self_signed(self) -> bool:
        return self.certificate.issuer == self.certificate.subject


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Whether a document's bytes are the ones its signature's key signed.

    ``intact`` is true only when the signature fits the profile, the digest of
    the document and the signature value both verify, and no part an
    application reads is duplicated. ``issued_at`` and ``export_country`` are
    read from the signed document (so they are covered by the signature when
    ``intact``) for :func:`judge_trust`.
    """

    intact: bool
    findings: list[Finding]
    signer: SignerCertificate | None = None
    algorithm: str | None = None
    algorithm_uri: str | None = None
    digest_ok: bool = False
    value_ok: bool = False
    issued_at: datetime | None = None
    export_country: str | None = None

    @property
    def certificate_valid_from(self) -> datetime | None:
        return self.signer.certificate.not_valid_before_utc if self.signer else None

    @property
    def certificate_valid_to(self) -> datetime | None:
        return self.signer.certificate.not_valid_after_utc if self.signer else None


class TimeSource(StrEnum):
    RECORDED = "recorded"
    """When this node recorded the document: what keys and certificates are judged at."""
    ISSUE_DATE = "issue-date"
    """The document's own IssueDateTime: all a file on disk has, and the signer wrote it."""


@dataclass(frozen=True, slots=True)
class TrustDecision:
    trusted: bool
    findings: list[Finding]
    judged_at: datetime | None = None
    time_source: TimeSource | None = None
    key: RegisteredKey | None = None


# --- reading the signature ----------------------------------------------------------------


def _q(local: str) -> str:
    return f"{{{DS}}}{local}"


_SIGNATURE = _q("Signature")
_SIGNED_INFO = _q("SignedInfo")
_SIGNATURE_VALUE = _q("SignatureValue")
_KEY_INFO = _q("KeyInfo")
_REFERENCE = _q("Reference")
_TRANSFORMS = _q("Transforms")
_DIGEST_METHOD = _q("DigestMethod")
_DIGEST_VALUE = _q("DigestValue")
_X509_DATA = _q("X509Data")
_X509_CERTIFICATE = _q("X509Certificate")
_INCLUSIVE_NAMESPACES = f"{{{EXC_C14N}}}InclusiveNamespaces"
_DOCUMENT = f"{{{RSM}}}SPSExchangedDocument"
_CONSIGNMENT = f"{{{RSM}}}SPSConsignment"


@dataclass(frozen=True, slots=True)
class _C14n:
    method: str
    prefixes: tuple[str, ...] = ()

    def apply(self, node: etree._Element | etree._ElementTree, *, comments: bool) -> bytes:
        exclusive = self.method in (EXC_C14N, EXC_C14N_COMMENTS)
        try:
            return etree.tostring(
                node,
                method="c14n",
                exclusive=exclusive,
                with_comments=comments,
                inclusive_ns_prefixes=list(self.prefixes) if exclusive and self.prefixes else None,
            )
        except (etree.LxmlError, ValueError) as exc:
            raise _Refused("signature.malformed", f"cannot canonicalise: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Profile:
    """The parts of a signature that fit the profile, read before anything is computed."""

    signature: etree._Element
    signed_info: etree._Element
    path: str
    c14n: _C14n
    method_uri: str
    method: _Method
    reference_c14n: _C14n
    digest_name: str
    digest_value: bytes
    value: bytes
    certificate: x509.Certificate


def _elements(parent: etree._Element) -> list[etree._Element]:
    """Child elements only: comments and PIs inside a signature change nothing we read."""
    return [child for child in parent if isinstance(child.tag, str)]


def _b64(element: etree._Element, path: str) -> bytes:
    """Strict base64: only its one canonical spelling, so no byte of a value goes unread."""
    text = "".join((element.text or "").split())
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("signature.malformed", "a value is not base64", path) from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise _Refused("signature.malformed", "a value is not canonical base64", path)
    return raw


def _the_signature(root: etree._Element) -> etree._Element:
    found = list(root.iter(_SIGNATURE))
    if not found:
        raise _Refused("signature.missing", "the document is not signed (no ds:Signature)")
    if len(found) > 1:
        paths = ", ".join(root.getroottree().getpath(s) for s in found)
        raise _Refused("signature.multiple", f"{len(found)} ds:Signature elements: {paths}")
    signature = found[0]
    if signature.getparent() is not root:
        path = root.getroottree().getpath(signature)
        raise _Refused(
            "signature.misplaced",
            "the ds:Signature is not a child of the root, so it cannot envelop the document",
            path,
        )
    return signature


_SIGNATURE_NAMESPACES = (f"{{{DS}}}", f"{{{DS11}}}")
_UNSIGNED_PARTS = frozenset({_q("Object"), _q("Manifest")})


def _no_unsigned_content(signature: etree._Element, path: str) -> None:
    """Refuse elements an application could read though nothing signs them (wrapping)."""
    for element in signature.iter():
        tag = element.tag
        if not isinstance(tag, str):
            continue
        if tag in _UNSIGNED_PARTS:
            raise _Refused(
                "signature.unsigned-content",
                f"the signature carries a {tag}, which the profile does not sign",
                path,
            )
        if not tag.startswith(_SIGNATURE_NAMESPACES) and tag != _INCLUSIVE_NAMESPACES:
            raise _Refused(
                "signature.unsigned-content",
                f"the signature carries an unsigned foreign element {tag}",
                path,
            )


def _parts(
    signature: etree._Element, path: str
) -> tuple[etree._Element, etree._Element, etree._Element | None]:
    children = _elements(signature)
    tags = [child.tag for child in children]
    if tags not in ([_SIGNED_INFO, _SIGNATURE_VALUE], [_SIGNED_INFO, _SIGNATURE_VALUE, _KEY_INFO]):
        raise _Refused(
            "signature.malformed",
            "a ds:Signature must hold SignedInfo, SignatureValue and KeyInfo, in that order",
            path,
        )
    return children[0], children[1], children[2] if len(children) == 3 else None


def _c14n_method(element: etree._Element, path: str, code: str = "signature.c14n") -> _C14n:
    """A C14N algorithm element, with exclusive C14N's InclusiveNamespaces prefix list."""
    method = element.get("Algorithm", "")
    if method not in _C14N_METHODS:
        raise _Refused(code, f"canonicalisation {method!r} is not allowed", path)
    children = _elements(element)
    if not children:
        return _C14n(method)
    if method in (EXC_C14N, EXC_C14N_COMMENTS) and [c.tag for c in children] == [
        _INCLUSIVE_NAMESPACES
    ]:
        prefixes = (children[0].get("PrefixList") or "").split()
        return _C14n(method, tuple(p for p in prefixes if p != "#default"))
    raise _Refused(code, f"canonicalisation {method!r} has parameters we do not accept", path)


def _signature_method(element: etree._Element, path: str) -> tuple[str, _Method]:
    uri = element.get("Algorithm", "")
    if _is_sha1(uri):
        raise _Refused("signature.sha1", f"signature method {uri} uses SHA-1", path)
    method = _SIGNATURE_METHODS.get(uri)
    if method is None or _elements(element):
        raise _Refused("signature.algorithm", f"signature method {uri!r} is not allowed", path)
    return uri, method


def _the_reference(references: list[etree._Element], path: str) -> etree._Element:
    if len(references) != 1:
        raise _Refused(
            "signature.references",
            f"SignedInfo has {len(references)} references; the profile signs the whole "
            "document with exactly one",
            path,
        )
    reference = references[0]
    uri = reference.get("URI")
    if uri not in (None, ""):
        raise _Refused(
            "signature.reference-uri",
            f'the reference points at {uri!r}, not at the whole document (URI="")',
            path + "/ds:Reference",
        )
    return reference


def _transforms(element: etree._Element | None, path: str) -> _C14n:
    """Enveloped-signature, then at most one C14N; the default C14N is inclusive 1.0."""
    transforms = _elements(element) if element is not None else []
    uris = [t.get("Algorithm", "") for t in transforms]
    if (
        not uris
        or uris[0] != ENVELOPED
        or len(uris) > 2
        or _elements(transforms[0])
        or any(t.tag != _q("Transform") for t in transforms)
    ):
        raise _Refused(
            "signature.transform",
            f"transforms {uris} are not enveloped-signature followed by at most one C14N",
            path,
        )
    if len(uris) == 1:
        return _C14n(C14N)
    return _c14n_method(transforms[1], path, code="signature.transform")


def _digest(reference: etree._Element, path: str) -> tuple[_C14n, str, bytes]:
    children = _elements(reference)
    tags = [child.tag for child in children]
    if tags == [_DIGEST_METHOD, _DIGEST_VALUE]:
        transforms, method, value = None, children[0], children[1]
    elif tags == [_TRANSFORMS, _DIGEST_METHOD, _DIGEST_VALUE]:
        transforms, method, value = children
    else:
        raise _Refused(
            "signature.malformed", "a Reference must hold Transforms, DigestMethod, DigestValue"
        )
    c14n = _transforms(transforms, path)
    uri = method.get("Algorithm", "")
    if _is_sha1(uri):
        raise _Refused("signature.sha1", f"digest method {uri} is SHA-1", path)
    name = _DIGEST_METHODS.get(uri)
    if name is None:
        raise _Refused("signature.digest-algorithm", f"digest method {uri!r} is not allowed", path)
    return c14n, name, _b64(value, path)


def _the_signer(certificates: list[x509.Certificate], path: str) -> x509.Certificate:
    """The one certificate that issued none of the others: the chain's end entity."""
    if len(certificates) == 1:
        return certificates[0]
    issuers = {(c.issuer, i) for i, c in enumerate(certificates)}
    leaves = [
        c
        for i, c in enumerate(certificates)
        if not any(name == c.subject and j != i for name, j in issuers)
    ]
    if len(leaves) != 1:
        raise _Refused(
            "signature.certificate",
            f"{len(certificates)} certificates in KeyInfo and no single signer among them",
            path,
        )
    return leaves[0]


def _certificate(key_info: etree._Element | None, path: str) -> x509.Certificate:
    path += "/ds:KeyInfo"
    elements = (
        []
        if key_info is None
        else [
            cert
            for data in key_info.iterchildren(_X509_DATA)
            for cert in data.iterchildren(_X509_CERTIFICATE)
        ]
    )
    if not elements:
        raise _Refused("signature.certificate", "KeyInfo holds no X509Data/X509Certificate", path)
    certificates = []
    for element in elements:
        try:
            certificates.append(_load_certificate(_b64(element, path)))
        except (ValueError, UnsupportedAlgorithm):
            raise _Refused(
                "signature.certificate", "an X509Certificate cannot be read", path
            ) from None
    return _the_signer(certificates, path)


@lru_cache(maxsize=256)
def _load_certificate(der: bytes) -> x509.Certificate:
    """Cached: one agency key signs thousands of certificates with the same X.509 bytes.

    The key and subject are read here so that a certificate cryptography can
    parse but not use (an unknown key type, a broken name) is refused as
    unreadable instead of failing later.
    """
    certificate = x509.load_der_x509_certificate(der)
    certificate.public_key()
    certificate.subject.rfc4514_string()
    return certificate


def _read_profile(root: etree._Element) -> _Profile:
    signature = _the_signature(root)
    path = root.getroottree().getpath(signature)
    _no_unsigned_content(signature, path)
    signed_info, value, key_info = _parts(signature, path)
    info_path = path + "/ds:SignedInfo"
    children = _elements(signed_info)
    if len(children) < 3 or [c.tag for c in children[:2]] != [
        _q("CanonicalizationMethod"),
        _q("SignatureMethod"),
    ]:
        raise _Refused(
            "signature.malformed",
            "SignedInfo must hold CanonicalizationMethod, SignatureMethod and a Reference",
            info_path,
        )
    if any(c.tag != _REFERENCE for c in children[2:]):
        raise _Refused("signature.malformed", "SignedInfo holds an unknown element", info_path)
    c14n = _c14n_method(children[0], info_path + "/ds:CanonicalizationMethod")
    method_uri, method = _signature_method(children[1], info_path + "/ds:SignatureMethod")
    reference = _the_reference(children[2:], info_path)
    reference_c14n, digest_name, digest_value = _digest(reference, info_path + "/ds:Reference")
    return _Profile(
        signature=signature,
        signed_info=signed_info,
        path=path,
        c14n=c14n,
        method_uri=method_uri,
        method=method,
        reference_c14n=reference_c14n,
        digest_name=digest_name,
        digest_value=digest_value,
        value=_b64(value, path + "/ds:SignatureValue"),
        certificate=_certificate(key_info, path),
    )


# --- checking it ---------------------------------------------------------------------------


def _remove_enveloped(signature: etree._Element) -> None:
    """The enveloped-signature transform: drop the element, keep the text after it.

    lxml moves an element's tail with it; the text after a signature is the
    document's, and leaving it out would let it change unnoticed.
    """
    parent = signature.getparent()
    assert parent is not None  # _the_signature made it a child of the root
    tail = signature.tail
    if tail:
        previous = signature.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(signature)


def _key_refusal(method: _Method, certificate: x509.Certificate) -> Finding | None:
    key = certificate.public_key()
    wanted = rsa.RSAPublicKey if method.rsa else ec.EllipticCurvePublicKey
    if not isinstance(key, wanted):
        return _finding(
            "signature.key-algorithm",
            f"the signature method is {method.name} but the certificate has a "
            f"{type(key).__name__.removeprefix('_')} key",
        )
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return _finding("signature.weak-key", f"an RSA key of {key.key_size} bits is too weak")
    return None


def _value_verifies(
    method: _Method, certificate: x509.Certificate, value: bytes, data: bytes
) -> bool:
    """XML-DSig's RSA values are PKCS#1 v1.5; its ECDSA values are r || s, not DER."""
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(value, data, padding.PKCS1v15(), method.hash())
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                return False
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(method.hash()))
            return True
    except (InvalidSignature, UnsupportedAlgorithm):
        return False
    return False


def _subject(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    value = values[0].value if values else None
    return value if isinstance(value, str) else None


@lru_cache(maxsize=256)
def _signer(certificate: x509.Certificate) -> SignerCertificate:
    name = (
        _subject(certificate, NameOID.ORGANIZATION_NAME)
        or _subject(certificate, NameOID.COMMON_NAME)
        or certificate.subject.rfc4514_string()
    )
    country = _subject(certificate, NameOID.COUNTRY_NAME)
    return SignerCertificate(certificate, name, country, key_id(certificate))


def _only_child(parent: etree._Element, tag: str) -> etree._Element | None:
    found = list(parent.iterchildren(tag))
    return found[0] if len(found) == 1 else None


def _issued_at(root: etree._Element) -> datetime | None:
    document = _only_child(root, _DOCUMENT)
    issue = _only_child(document, f"{{{RAM}}}IssueDateTime") if document is not None else None
    return parse_element(issue).value if issue is not None else None


def _export_country(root: etree._Element) -> str | None:
    consignment = _only_child(root, _CONSIGNMENT)
    country = (
        _only_child(consignment, f"{{{RAM}}}ExportSPSCountry") if consignment is not None else None
    )
    identifier = _only_child(country, f"{{{RAM}}}ID") if country is not None else None
    text = identifier.text.strip() if identifier is not None and identifier.text else ""
    return text.upper() or None


def _duplicated_parts(root: etree._Element) -> list[Finding]:
    """Wrapping by duplication: the schema allows one of each, an application reads one."""
    findings = []
    for tag in (_DOCUMENT, _CONSIGNMENT):
        count = sum(1 for _ in root.iterchildren(tag))
        if count > 1:
            local = etree.QName(tag).localname
            findings.append(
                _finding(
                    "signature.duplicated-part",
                    f"the root holds {count} {local} elements; which one an application "
                    "reads is not what anyone signed for",
                    f"/{root.prefix + ':' if root.prefix else ''}{etree.QName(root).localname}",
                )
            )
    return findings


def verify_enveloped(data: bytes, *, limits: XmlLimits = DEFAULT_LIMITS) -> SignatureCheck:
    """Check the enveloped signature of a document's exact bytes; never raises on bad input.

    Unreadable XML comes back as the hardened reader's ``xml.*`` finding; a
    signature outside the profile as the first reason it leaves it; a
    profile-conforming one is checked for both digest and value, so a changed
    document and a forged value are told apart.
    """
    try:
        root = parse_bytes(data, limits).root
    except DocumentRefused as exc:
        return SignatureCheck(intact=False, findings=[exc.finding])
    return verify_parsed(root)


def verify_parsed(root: etree._Element) -> SignatureCheck:
    """:func:`verify_enveloped` on a tree the hardened reader already parsed (saves a parse).

    The tree is changed (the signature is taken out to compute the digest): call
    it last on a tree, after everything else that reads it.
    """
    try:
        profile = _read_profile(root)
        return _check(root, profile)
    except _Refused as refused:
        return SignatureCheck(intact=False, findings=[refused.finding])


def _check(root: etree._Element, profile: _Profile) -> SignatureCheck:
    findings: list[Finding] = []
    signed_info = profile.c14n.apply(
        profile.signed_info, comments=profile.c14n.method in (C14N_COMMENTS, EXC_C14N_COMMENTS)
    )
    _remove_enveloped(profile.signature)
    # URI="" selects the document without comments, whatever C14N follows (XML-DSig 4.4.3.3).
    document = profile.reference_c14n.apply(root.getroottree(), comments=False)
    digest_ok = hmac.compare_digest(
        hashlib.new(profile.digest_name, document).digest(), profile.digest_value
    )
    if not digest_ok:
        findings.append(
            _finding(
                "signature.digest-mismatch",
                "the document is not the one signed: its digest differs",
                profile.path + "/ds:SignedInfo/ds:Reference/ds:DigestValue",
            )
        )
    key_refusal = _key_refusal(profile.method, profile.certificate)
    value_ok = key_refusal is None and _value_verifies(
        profile.method, profile.certificate, profile.value, signed_info
    )
    if key_refusal is not None:
        findings.append(key_refusal)
    elif not value_ok:
        findings.append(
            _finding(
                "signature.bad-value",
                "the signature value is not the certificate key's signature of SignedInfo",
                profile.path + "/ds:SignatureValue",
            )
        )
    findings.extend(_duplicated_parts(root))
    return SignatureCheck(
        intact=not findings,
        findings=findings,
        signer=_signer(profile.certificate),
        algorithm=profile.method.name,
        algorithm_uri=profile.method_uri,
        digest_ok=digest_ok,
        value_ok=value_ok,
        issued_at=_issued_at(root),
        export_country=_export_country(root),
    )


# --- trust ---------------------------------------------------------------------------------


def judge_trust(
    check: SignatureCheck,
    keys: KeyLookup,
    *,
    recorded_at: datetime | None = None,
    export_country: str | None = None,
    role: Role | None = None,
) -> TrustDecision:
    """Whether an intact signature is by a key we accept for this certificate, and why not.

    The time judged is when this node recorded the document; a file with no
    such time is judged at its own IssueDateTime, and each finding says which.
    The signer's country is the registered key's (the registry is the
    authority) or else the certificate's subject C; it must be the export
    country, so one NPPO cannot issue another country's certificates.
    """
    findings: list[Finding] = []
    if not check.intact:
        findings.append(_finding("policy.not-intact", "the signature is not intact"))
    signer = check.signer
    if signer is None:
        return TrustDecision(False, findings)
    at, source = _judged_time(check, recorded_at)
    key = keys.key(signer.key_id)
    if key is None:
        findings.append(_unknown_key(signer))
    if at is None:
        findings.append(
            _finding(
                "policy.no-time",
                "no recorded time and no readable IssueDateTime: the certificate cannot be "
                "judged at any time",
            )
        )
    else:
        findings.extend(_validity_findings(signer, key, at, source))
        if key is not None:
            findings.extend(_lifecycle_findings(key, at, source))
    if key is not None and role is not None and role not in key.roles:
        findings.append(
            _finding(
                "policy.wrong-role",
                f"key {key.key_id[:16]} of {key.owner} has roles "
                f"{sorted(r.value for r in key.roles)}, not {role.value}",
            )
        )
    findings.extend(_country_findings(signer, key, export_country or check.export_country))
    return TrustDecision(not findings, findings, at, source, key)


def _judged_time(
    check: SignatureCheck, recorded_at: datetime | None
) -> tuple[datetime | None, TimeSource | None]:
    if recorded_at is not None:
        return recorded_at, TimeSource.RECORDED
    if check.issued_at is not None:
        return check.issued_at, TimeSource.ISSUE_DATE
    return None, None


def _when(at: datetime, source: TimeSource | None) -> str:
    if source is TimeSource.RECORDED:
        return f"when recorded ({at.isoformat()})"
    return f"at the document's IssueDateTime ({at.isoformat()}; no recorded time)"


def _unknown_key(signer: SignerCertificate) -> Finding:
    how = "self-signed certificate" if signer.self_signed else "certificate"
    return _finding(
        "policy.unknown-key",
        f"{signer.name} signed with key {signer.key_id[:16]} ({how} "
        f"{signer.certificate.subject.rfc4514_string()}), which is not registered",
    )


def _valid_at(certificate: x509.Certificate, at: datetime) -> bool:
    return certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc


def _validity_findings(
    signer: SignerCertificate, key: RegisteredKey | None, at: datetime, source: TimeSource | None
) -> list[Finding]:
    """Judge the registered certificate when there is one: KeyInfo is not signed.

    Anyone can swap KeyInfo's certificate for another with the same key and
    other dates without breaking the signature, so its dates count only for a
    key we do not know (and which is refused anyway).
    """
    certificate = key.certificate if key is not None else signer.certificate
    if _valid_at(certificate, at):
        return []
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return [
        _finding(
            "policy.certificate-not-valid",
            f"{signer.name}'s certificate is valid only from {start.isoformat()} to "
            f"{end.isoformat()}, not {_when(at, source)}",
        )
    ]


def _lifecycle_findings(
    key: RegisteredKey, at: datetime, source: TimeSource | None
) -> list[Finding]:
    refusal = key.refusal_at(at)
    if refusal is None:
        return []
    if key.revoked_at is not None and at >= key.revoked_at:
        return [_finding("policy.key-revoked", f"{refusal}; judged {_when(at, source)}")]
    if not _valid_at(key.certificate, at) and refusal.startswith("certificate of key"):
        return []  # the certificate's own validity, already said by _validity_findings
    return [_finding("policy.key-not-valid", f"{refusal}; judged {_when(at, source)}")]


def _country_findings(
    signer: SignerCertificate, key: RegisteredKey | None, export_country: str | None
) -> list[Finding]:
    country, whose = (
        (key.country, "registered key") if key is not None else (signer.country, "certificate")
    )
    if export_country is None:
        return [
            _finding(
                "policy.no-export-country",
                "the certificate names no single ExportSPSCountry to match the signer against",
            )
        ]
    if (country or "").upper() != export_country.upper():
        return [
            _finding(
                "policy.country-mismatch",
                f"the signer's country is {country or 'unknown'} (from its {whose}), "
                f"the export country is {export_country}",
            )
        ]
    return []


# --- signing -------------------------------------------------------------------------------


_SIGN_REFUSED = "signature.malformed"
_ALREADY_SIGNED = "signature.multiple"


def _signature_template(method_uri: str, digest: bytes, certificate: bytes) -> etree._Element:
    """Our profile as we emit it: inclusive C14N 1.0 throughout, SHA-256, the certificate."""
    signature = etree.Element(_SIGNATURE, nsmap={"ds": DS})
    info = etree.SubElement(signature, _SIGNED_INFO)
    etree.SubElement(info, _q("CanonicalizationMethod"), Algorithm=C14N)
    etree.SubElement(info, _q("SignatureMethod"), Algorithm=method_uri)
    reference = etree.SubElement(info, _REFERENCE, URI="")
    transforms = etree.SubElement(reference, _TRANSFORMS)
    etree.SubElement(transforms, _q("Transform"), Algorithm=ENVELOPED)
    etree.SubElement(transforms, _q("Transform"), Algorithm=C14N)
    etree.SubElement(reference, _DIGEST_METHOD, Algorithm=_ENC + "sha256")
    etree.SubElement(reference, _DIGEST_VALUE).text = base64.b64encode(digest).decode()
    etree.SubElement(signature, _SIGNATURE_VALUE)
    data = etree.SubElement(etree.SubElement(signature, _KEY_INFO), _X509_DATA)
    etree.SubElement(data, _X509_CERTIFICATE).text = base64.b64encode(certificate).decode()
    return signature


def _root_end(data: bytes, root: etree._Element) -> int:
    """Where the root's end tag starts in the bytes: the signature goes right before it."""
    local = etree.QName(root).localname
    name = (f"{root.prefix}:{local}" if root.prefix else local).encode()
    matches = list(re.finditer(rb"</" + re.escape(name) + rb"\s*>", data))
    if not matches:
        raise TrustError("the document's root has no end tag to sign before", code=_SIGN_REFUSED)
    return matches[-1].start()


_ASCII_COMPATIBLE = re.compile(r"(?i)^(utf-?8|us-ascii|ascii|iso-8859-\d+|windows-\d+|latin-?1)$")


def _signature_bytes(root: etree._Element, signer: Signer) -> bytes:
    """The signature element, computed in place so SignedInfo sees the root's namespaces."""
    digest = hashlib.sha256(_C14n(C14N).apply(root.getroottree(), comments=False)).digest()
    certificate = signer.certificate.public_bytes(Encoding.DER)
    signature = _signature_template(_SIGNING_METHOD[signer.algorithm], digest, certificate)
    root.append(signature)
    signed_info = _C14n(C14N).apply(signature[0], comments=False)
    signature[1].text = base64.b64encode(signer.sign(signed_info)).decode()
    return etree.tostring(signature, with_tail=False)


def sign_enveloped(data: bytes, signer: Signer) -> bytes:
    """The exact bytes of ``data`` with our enveloped signature inserted before the root's end.

    The original bytes are kept (never re-serialised) so what the issuer
    stored is, byte for byte, what the partner receives minus the signature.
    The result is verified before it is returned: a document we would refuse
    to accept is not one we send.
    """
    document = parse_bytes(data)
    root = document.root
    encoding = root.getroottree().docinfo.encoding or "UTF-8"
    if not _ASCII_COMPATIBLE.match(encoding):
        raise TrustError(f"cannot sign a document in {encoding}", code=_SIGN_REFUSED)
    if next(root.iter(_SIGNATURE), None) is not None:
        raise TrustError("the document is already signed", code=_ALREADY_SIGNED)
    end = _root_end(data, root)
    try:
        fragment = _signature_bytes(root, signer)
    except _Refused as refused:
        raise TrustError(refused.finding.message, code=_SIGN_REFUSED) from None
    signed = data[:end] + fragment + data[end:]
    check = verify_enveloped(signed)
    if not check.intact:
        reasons = "; ".join(f.message for f in check.findings)
        raise TrustError(f"the signed document does not verify: {reasons}", code=_SIGN_REFUSED)
    return signed


__all__ = [
    "SignatureCheck",
    "SignerCertificate",
    "TimeSource",
    "TrustDecision",
    "judge_trust",
    "sign_enveloped",
    "verify_enveloped",
]
