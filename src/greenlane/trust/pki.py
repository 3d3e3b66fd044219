"""The corridor PKI: each country's root CA and the certificates it issues.

Each country runs one corridor root CA. It is kept offline in production (a
file only in development, with a loud warning from the CLI) and issues X.509
certificates to its agencies and nodes. The partner pins the root's
certificate from the corridor file; every other certificate is trusted only
because its root issued it *and* the registry holds its key. The system CA
store is never consulted.

An issued certificate names its owner as a URI subject alternative name,
``urn:greenlane:<agency|node>:<id>``, so a signature is tied to a participant
by the certificate its root signed, not by a name the sender wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from greenlane.trust.keys import OwnerKind
from greenlane.trust.signers import Algorithm, TrustError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ROOT_VALIDITY = timedelta(days=3650)
ISSUED_VALIDITY = timedelta(days=730)
_BACKDATE = timedelta(minutes=5)
"""Issued certificates start a little in the past: a partner clock slightly behind accepts them."""
_URN = "urn:greenlane:"


def generate_key(algorithm: Algorithm = Algorithm.ES256) -> PrivateKey:
    """A new private key: EC P-256, or RSA 3072 for RS256."""
    if algorithm is Algorithm.RS256:
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def create_root(
    country: str, organisation: str, key: PrivateKey, *, now: datetime | None = None
) -> x509.Certificate:
    """A self-signed root CA certificate for ``country``'s corridor PKI."""
    now = now or datetime.now(UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"greenlane corridor root CA {country}"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a certificate is issued to."""

    country: str
    kind: OwnerKind
    id: str
    name: str

    @property
    def uri(self) -> str:
        return f"{_URN}{self.kind.value}:{self.id}"


def issue(
    root_key: PrivateKey,
    root: x509.Certificate,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    owner: Owner,
    *,
    now: datetime | None = None,
    validity: timedelta = ISSUED_VALIDITY,
) -> x509.Certificate:
    """A certificate for an agency's or node's signing key, issued by the country's root."""
    now = now or datetime.now(UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, owner.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, owner.name),
            x509.NameAttribute(NameOID.COMMON_NAME, owner.id),
        ]
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if owner.kind is OwnerKind.NODE:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=owner.kind is OwnerKind.AGENCY,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(owner.uri)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )


def owner_uri(certificate: x509.Certificate) -> str | None:
    """The ``urn:greenlane:...`` owner a certificate names, or None."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    for uri in san.value.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(_URN):
            return uri
    return None


def check_issued_by(certificate: x509.Certificate, root: x509.Certificate) -> None:
    """Refuse a certificate the country's root did not issue, or one that is itself a CA."""
    try:
        certificate.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise TrustError(
            f"certificate {certificate.subject.rfc4514_string()} was not issued by "
            f"{root.subject.rfc4514_string()}",
            code="trust.not-issued-by-root",
        ) from exc
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return
    if constraints.value.ca:
        raise TrustError(
            "a CA certificate cannot be a signing key", code="trust.not-issued-by-root"
        )
