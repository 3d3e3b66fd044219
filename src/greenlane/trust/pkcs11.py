"""Signing keys kept on a PKCS#11 token (an HSM, a smart card, SoftHSM2 in tests).

The private key is generated on the token, marked sensitive and not
extractable, and never leaves it: greenlane holds only a *reference* (the
object label ``greenlane:<owner>:<first 16 hex of the key id>``) and asks the
token to sign. The key id (SHA-256 of the SubjectPublicKeyInfo, as everywhere
in greenlane) is also written as the objects' ``CKA_ID``, so an operator can
match token objects to registry entries with the vendor's own tools.

What each algorithm needs from the token is one row of :data:`SCHEMES`
(key type, key size or curve, signing mechanism, whether we hash first). A
GOST R 34.10-2012 provider is one more row: ``CKK_GOSTR3410`` keys with the
``CKA_GOSTR3410_PARAMS`` of the chosen parameter set, signed with
``CKM_GOSTR3410_WITH_GOSTR3411_12_256`` (or ``CKM_GOSTR3410`` over a
Streebog digest), plus its own :class:`~greenlane.trust.signers.Algorithm`
and a way to rebuild its public key for the certificate.

Concurrency: python-pkcs11 initialises the library without locking callbacks,
which by the PKCS#11 specification means the application must not call it from
several threads at once. Every call therefore goes through one process-wide
lock; a token signs one request at a time anyway.

Login: PKCS#11 login state belongs to the application, not to a session, and a
second ``C_Login`` fails. So a process keeps one logged-in session per token
(:class:`_Token`), shared by every provider and signer for that token, and
reopens it once if the token drops it.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    DeviceRemoved,
    MultipleObjectsReturned,
    NoSuchKey,
    PKCS11Error,
    SessionClosed,
    SessionHandleInvalid,
    TokenNotPresent,
    UserAlreadyLoggedIn,
    UserNotLoggedIn,
)
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from greenlane.trust.keys import key_id, public_key_id
from greenlane.trust.signers import Algorithm, TrustError, algorithm_for

if TYPE_CHECKING:
    from greenlane.settings import Settings

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
T = TypeVar("T")

LABEL_PREFIX = "greenlane:"


@dataclass(frozen=True, slots=True)
class Scheme:
    """How one :class:`Algorithm` is made and used on a token."""

    key_type: KeyType
    sign_mechanism: Mechanism
    key_length: int | None = None
    """Bits, for key types sized by length (RSA)."""
    domain: tuple[tuple[Attribute, Any], ...] = ()
    """Domain parameters for key types sized by them (EC curve, GOST parameter set)."""
    prehash: type[hashes.HashAlgorithm] | None = None
    """Hash here and give the token the digest: for mechanisms that sign a digest."""


SCHEMES: dict[Algorithm, Scheme] = {
    # CKM_ECDSA signs a digest and returns the raw r || s greenlane uses. SoftHSM2
    # 2.6 has no CKM_ECDSA_SHA256, and hashing here saves streaming the document.
    Algorithm.ES256: Scheme(
        KeyType.EC,
        Mechanism.ECDSA,
        domain=((Attribute.EC_PARAMS, encode_named_curve_parameters("secp256r1")),),
        prehash=hashes.SHA256,
    ),
    Algorithm.RS256: Scheme(KeyType.RSA, Mechanism.SHA256_RSA_PKCS, key_length=3072),
}

_CALLS = threading.RLock()
"""Serialises every call into PKCS#11 libraries (see the module docstring)."""
_TOKENS: dict[tuple[str, str], _Token] = {}
_RECONNECT = (DeviceRemoved, SessionClosed, SessionHandleInvalid, TokenNotPresent, UserNotLoggedIn)


class _Token:
    """The process's one logged-in session on a token."""

    def __init__(self, token: pkcs11.Token, pin: str) -> None:
        self.token = token
        self._pin = pin
        self.session = self._login()

    def pin_is(self, pin: str) -> bool:
        """Whether ``pin`` is the one that logged in: a second ``C_Login`` cannot check it."""
        return hmac.compare_digest(pin.encode(), self._pin.encode())

    def _login(self) -> pkcs11.Session:
        try:
            return self.token.open(rw=True, user_pin=self._pin)
        except UserAlreadyLoggedIn:
            # Logged in by other code in this process: the session shares that login.
            return self.token.open(rw=True)

    def run(self, what: str, operation: Callable[[pkcs11.Session], T]) -> T:
        """Run ``operation`` on the session, logging in again once if the token dropped it."""
        with _CALLS:
            try:
                try:
                    return operation(self.session)
                except _RECONNECT:
                    self.session = self._relogin()
                    return operation(self.session)
            except PKCS11Error as exc:
                raise TrustError(
                    f"PKCS#11 token {self.token.label!r} refused to {what}: {_describe(exc)}",
                    code="trust.pkcs11-failed",
                ) from exc

    def _relogin(self) -> pkcs11.Session:
        try:
            return self._login()
        except PKCS11Error as exc:
            raise TrustError(
                f"PKCS#11 token {self.token.label!r} cannot be opened again: {_describe(exc)}",
                code="trust.pkcs11-unavailable",
            ) from exc


def _open_token(module: Path, label: str, pin: str) -> _Token:
    key = (str(module), label)
    with _CALLS:
        cached = _TOKENS.get(key)
        if cached is not None:
            if not cached.pin_is(pin):
                raise TrustError(
                    f"PKCS#11 token {label!r}: the PIN is not the one this process logged in with",
                    code="trust.pkcs11-unavailable",
                )
            return cached
        if not module.is_file():
            raise TrustError(
                f"PKCS#11 module {module} does not exist", code="trust.pkcs11-unavailable"
            )
        try:
            token = pkcs11.lib(str(module)).get_token(token_label=label)
            opened = _Token(token, pin)
        except (PKCS11Error, OSError) as exc:
            raise TrustError(
                f"PKCS#11 token {label!r} in {module} cannot be opened: {_describe(exc)}",
                code="trust.pkcs11-unavailable",
            ) from exc
        _TOKENS[key] = opened
        return opened


def _describe(exc: BaseException) -> str:
    """python-pkcs11 errors often carry no message; their class names the CKR_ value."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Pkcs11Provider:
    """A :class:`~greenlane.trust.lifecycle.KeyProvider` whose keys live on one token."""

    module: Path
    token_label: str
    _token: _Token = field(repr=False, compare=False)
    name: str = "pkcs11"

    @classmethod
    def open(cls, module: Path, token_label: str, pin: str) -> Pkcs11Provider:
        """Load the module, find the token and log in now, so a bad setting fails at start."""
        return cls(module, token_label, _open_token(module, token_label, pin))

    @classmethod
    def from_settings(cls, settings: Settings) -> Pkcs11Provider:
        """The provider the settings name; refuses at once if any of the three is missing."""
        module, label, pin = (
            settings.pkcs11_module,
            settings.pkcs11_token_label,
            settings.pkcs11_pin,
        )
        if module is None or not label or pin is None or not pin.get_secret_value():
            missing = [
                f"GREENLANE_{name.upper()}"
                for name, value in (
                    ("pkcs11_module", module),
                    ("pkcs11_token_label", label),
                    ("pkcs11_pin", pin and pin.get_secret_value()),
                )
                if not value
            ]
            raise TrustError(
                f"the pkcs11 signing provider needs {', '.join(missing)}",
                code="trust.pkcs11-config",
            )
        return cls.open(module, label, pin.get_secret_value())

    def generate(self, owner: str, algorithm: Algorithm) -> tuple[PublicKey, str]:
        """A key pair made on the token; returns its public key and its label.

        The label and ``CKA_ID`` depend on the public key, which exists only
        after generation: the pair is made under a random label and renamed.
        """
        scheme = _scheme(algorithm)

        def make(session: pkcs11.Session) -> tuple[PublicKey, str]:
            pending = f"{LABEL_PREFIX}pending:{secrets.token_hex(8)}"
            public_template = {Attribute.TOKEN: True, Attribute.PRIVATE: False}
            private_template = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            }
            options: dict[str, Any] = {
                "label": pending,
                "store": True,
                "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
                "public_template": public_template,
                "private_template": private_template,
            }
            if scheme.domain:
                params = session.create_domain_parameters(
                    scheme.key_type, dict(scheme.domain), local=True
                )
                public_obj, private_obj = params.generate_keypair(**options)
            else:
                public_obj, private_obj = session.generate_keypair(
                    scheme.key_type, scheme.key_length, **options
                )
            try:
                public = _public_key(public_obj)
                if algorithm_for(public) is not algorithm:
                    raise TrustError(
                        f"the token made a key that is not {algorithm}", code="trust.algorithm"
                    )
                kid = public_key_id(public)
                label = f"{LABEL_PREFIX}{owner}:{kid[:16]}"
                for obj in (public_obj, private_obj):
                    obj[Attribute.ID] = bytes.fromhex(kid)
                    obj[Attribute.LABEL] = label
            except BaseException:
                # A pair we cannot name would be an orphan on the token: remove it.
                for obj in (private_obj, public_obj):
                    with contextlib.suppress(PKCS11Error):
                        obj.destroy()
                raise
            return public, label

        return self._token.run(f"generate a {algorithm} key pair for {owner}", make)

    def signer(self, reference: str, certificate: x509.Certificate) -> Pkcs11Signer:
        """The signer of the key pair labelled ``reference``, checked against ``certificate``."""
        return Pkcs11Signer(self._token, reference, certificate)


class Pkcs11Signer:
    """A :class:`~greenlane.trust.signers.Signer` whose private key stays on the token."""

    __slots__ = ("_handle", "_token", "algorithm", "certificate", "reference")

    def __init__(self, token: _Token, reference: str, certificate: x509.Certificate) -> None:
        self.algorithm: Algorithm = algorithm_for(certificate.public_key())
        self.certificate = certificate
        self.reference = reference
        self._token = token
        self._handle: tuple[pkcs11.Session, pkcs11.SignMixin] | None = None
        # Refuse a missing or mismatched key now, not at the first signature.
        self._token.run(f"find {reference!r}", self._private_key)

    @property
    def key_id(self) -> str:
        return key_id(self.certificate)

    def _private_key(self, session: pkcs11.Session) -> pkcs11.SignMixin:
        """The private key object, found once per session and checked against the certificate."""
        if self._handle is not None and self._handle[0] is session:
            return self._handle[1]
        try:
            public_obj = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=self.reference)
            private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self.reference)
        except (NoSuchKey, MultipleObjectsReturned) as exc:
            raise TrustError(
                f"no single key pair labelled {self.reference!r} on the PKCS#11 token "
                f"({type(exc).__name__})",
                code="trust.pkcs11-no-key",
            ) from exc
        if not isinstance(public_obj, pkcs11.PublicKey) or not isinstance(
            private, pkcs11.SignMixin
        ):
            raise TrustError(
                f"the key pair labelled {self.reference!r} on the PKCS#11 token cannot sign",
                code="trust.pkcs11-no-key",
            )
        kid = self.key_id
        if public_key_id(_public_key(public_obj)) != kid or private[Attribute.ID] != bytes.fromhex(
            kid
        ):
            raise TrustError(
                f"the certificate is not for the key labelled {self.reference!r} on the token",
                code="trust.key-mismatch",
            )
        self._handle = (session, private)
        return private

    def sign(self, data: bytes) -> bytes:
        scheme = _scheme(self.algorithm)
        message = data
        if scheme.prehash is not None:
            digest = hashes.Hash(scheme.prehash())
            digest.update(data)
            message = digest.finalize()

        def sign(session: pkcs11.Session) -> bytes:
            return self._private_key(session).sign(message, mechanism=scheme.sign_mechanism)

        return self._token.run(f"sign with {self.reference!r}", sign)


def _scheme(algorithm: Algorithm) -> Scheme:
    scheme = SCHEMES.get(algorithm)
    if scheme is None:  # pragma: no cover - every Algorithm has a row today
        raise TrustError(f"no PKCS#11 mechanism for {algorithm}", code="trust.algorithm")
    return scheme


def _public_key(obj: pkcs11.PublicKey) -> PublicKey:
    """Rebuild a token's public key object as a ``cryptography`` key."""
    if obj.key_type is KeyType.RSA:
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        modulus = int.from_bytes(obj[Attribute.MODULUS], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if obj.key_type is KeyType.EC:
        key = load_der_public_key(encode_ec_public_key(obj))
        if isinstance(key, ec.EllipticCurvePublicKey):
            return key
    raise TrustError(
        f"a {obj.key_type} key on the token is not one greenlane signs with", code="trust.algorithm"
    )
