"""Who signs: a small provider interface, so the private key can live anywhere.

A :class:`Signer` knows its certificate and algorithm and turns bytes into a
signature; nothing else in greenlane touches a private key. Providers: software
keys (PKCS#8 PEM, encrypted with a passphrase) here, PKCS#11 tokens in
:mod:`greenlane.trust.pkcs11`. A GOST R 34.10-2012 provider would be one more
class with the same three members and its own :class:`Algorithm`.

Signatures are in the form both XML-DSig and JWS use: PKCS#1 v1.5 bytes for RSA,
the fixed-size ``r || s`` for ECDSA (not DER).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from greenlane.errors import GreenlaneError
from greenlane.trust.keys import key_id, public_key_id


class Algorithm(StrEnum):
    """Signature algorithms greenlane makes and accepts, by their JOSE names."""

    RS256 = "RS256"
    ES256 = "ES256"


_HASH = {Algorithm.RS256: hashes.SHA256, Algorithm.ES256: hashes.SHA256}
_CURVE_SIZE = {Algorithm.ES256: 32}


class TrustError(GreenlaneError):
    """A signature, key or registry update that greenlane refuses; ``code`` says which."""

    code = "trust.refused"


class Signer(Protocol):
    """A private key, wherever it is kept, with the certificate that names it."""

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def algorithm(self) -> Algorithm: ...

    def sign(self, data: bytes) -> bytes: ...


def algorithm_for(public_key: object) -> Algorithm:
    """The algorithm a key signs with; keys of other kinds and curves are refused."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise TrustError(
                f"RSA keys of {public_key.key_size} bits are too weak", code="trust.weak-key"
            )
        return Algorithm.RS256
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return Algorithm.ES256
    raise TrustError(
        f"a {type(public_key).__name__} key is not one greenlane signs with (RSA, EC P-256)",
        code="trust.algorithm",
    )


def verify_raw(
    certificate: x509.Certificate, algorithm: Algorithm, signature: bytes, data: bytes
) -> bool:
    """Whether ``signature`` (in the raw form above) is by the certificate's key over ``data``."""
    public_key = certificate.public_key()
    digest = _HASH[algorithm]()
    try:
        if algorithm is Algorithm.RS256:
            if not isinstance(public_key, rsa.RSAPublicKey):
                return False
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
            return True
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return False
        size = _CURVE_SIZE[algorithm]
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False


@dataclass(frozen=True, slots=True)
class SoftwareSigner:
    """A private key held in memory, read from an encrypted PKCS#8 file."""

    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    algorithm: Algorithm

    @classmethod
    def from_key(
        cls, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cert: x509.Certificate
    ) -> SoftwareSigner:
        if key_id(cert) != public_key_id(private_key.public_key()):
            raise TrustError(
                "the certificate is not for this private key", code="trust.key-mismatch"
            )
        return cls(private_key, cert, algorithm_for(private_key.public_key()))

    @classmethod
    def load(cls, key_file: Path, cert_file: Path, passphrase: str | None) -> SoftwareSigner:
        password = passphrase.encode() if passphrase else None
        try:
            key = serialization.load_pem_private_key(key_file.read_bytes(), password)
        except (ValueError, TypeError) as exc:
            raise TrustError(
                f"{key_file}: cannot read the private key ({exc})", code="trust.key-unreadable"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise TrustError(f"{key_file}: not an RSA or EC key", code="trust.algorithm")
        return cls.from_key(key, x509.load_pem_x509_certificate(cert_file.read_bytes()))

    @property
    def key_id(self) -> str:
        return key_id(self.certificate)

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        digest = _HASH[self.algorithm]()
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), digest)
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = _CURVE_SIZE[self.algorithm]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def write_private_key(
    path: Path, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, passphrase: str | None
) -> None:
    """Write a key as PKCS#8 PEM, encrypted when there is a passphrase, readable by owner only."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    data = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)
