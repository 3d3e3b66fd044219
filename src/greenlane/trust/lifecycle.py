"""Our own country's keys: make, rotate in two stages, revoke; each change a registry update.

The root CA signs certificates and registry updates. In production it is kept
offline and brought to the node only for these commands (``--root-key``); in
development it is a file under ``GREENLANE_KEY_DIR`` and the CLI says so loudly.

Rotation: :func:`rotate` publishes a new *pending* key (the partner can verify
with it from then on); :func:`activate` makes it the signing key and retires
the old one, which keeps verifying what it signed (see :mod:`greenlane.trust.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from sqlalchemy.orm import Session

from greenlane.settings import Settings
from greenlane.store.models import Country, StoredKey
from greenlane.trust import pki, registry
from greenlane.trust.keys import KeyState, OwnerKind, key_id, public_key_id
from greenlane.trust.signers import (
    Algorithm,
    Signer,
    SoftwareSigner,
    TrustError,
    write_private_key,
)
from greenlane.trust.updates import Change, apply_transition, issue_update


class KeyProvider(Protocol):
    """Where private keys are made and kept: files, or a PKCS#11 token."""

    @property
    def name(self) -> str: ...

    def generate(self, owner: str, algorithm: Algorithm) -> tuple[PublicKey, str]:
        """A new key pair; returns its public key and the reference to find it again."""
        ...

    def signer(self, reference: str, certificate: x509.Certificate) -> Signer: ...


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class SoftwareProvider:
    """Encrypted PKCS#8 files, one per key, under the key directory."""

    directory: Path
    passphrase: str | None
    name: str = "software"

    def generate(self, owner: str, algorithm: Algorithm) -> tuple[PublicKey, str]:
        private = pki.generate_key(algorithm)
        public = private.public_key()
        path = self.directory / owner / f"{public_key_id(public)[:16]}.key.pem"
        write_private_key(path, private, self.passphrase)
        return public, str(path)

    def signer(self, reference: str, certificate: x509.Certificate) -> Signer:
        password = self.passphrase.encode() if self.passphrase else None
        path = Path(reference)
        try:
            private = load_pem_private_key(path.read_bytes(), password)
        except (OSError, ValueError, TypeError) as exc:
            raise TrustError(
                f"{path}: cannot read the private key ({exc})", code="trust.key-unreadable"
            ) from exc
        if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise TrustError(f"{path}: not an RSA or EC key", code="trust.algorithm")
        return SoftwareSigner.from_key(private, certificate)


@dataclass(frozen=True, slots=True)
class RootCA:
    """A country's root CA key and certificate, loaded for one operation."""

    signer: SoftwareSigner

    @property
    def certificate(self) -> x509.Certificate:
        return self.signer.certificate

    def issue(self, public_key: PublicKey, owner: pki.Owner, now: datetime) -> x509.Certificate:
        return pki.issue(self.signer.private_key, self.certificate, public_key, owner, now=now)


def provider_from_settings(settings: Settings) -> KeyProvider:
    """The key provider the settings name: PKCS#8 files, or a PKCS#11 token."""
    if settings.signing_provider == "pkcs11":
        from greenlane.trust.pkcs11 import Pkcs11Provider

        return Pkcs11Provider.from_settings(settings)
    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    return SoftwareProvider(settings.key_dir, passphrase)


def root_paths(key_dir: Path, country: str) -> tuple[Path, Path]:
    """The development location of a country's root CA key and certificate."""
    return key_dir / country / "root-ca.key.pem", key_dir / country / "root-ca.pem"


def create_root_ca(
    key_dir: Path, country: str, organisation: str, passphrase: str | None, now: datetime
) -> RootCA:
    key_file, cert_file = root_paths(key_dir, country)
    if key_file.exists():
        raise TrustError(f"{key_file} already exists", code="trust.root-exists")
    private = pki.generate_key(Algorithm.ES256)
    certificate = pki.create_root(country, organisation, private, now=now)
    write_private_key(key_file, private, passphrase)
    cert_file.write_bytes(certificate.public_bytes(Encoding.PEM))
    return RootCA(SoftwareSigner.from_key(private, certificate))


def load_root_ca(key_file: Path, cert_file: Path, passphrase: str | None) -> RootCA:
    if not key_file.is_file() or not cert_file.is_file():
        raise TrustError(
            f"the root CA key ({key_file}) or certificate ({cert_file}) is not here",
            code="trust.no-root",
        )
    return RootCA(SoftwareSigner.load(key_file, cert_file, passphrase))


def init_country(
    session: Session, country: str, root: RootCA, provider: KeyProvider, now: datetime
) -> list[StoredKey]:
    """Register the root and give every agency and node of ``country`` without a key an active one.

    All the new keys travel in one registry update, published and activated at once.
    """
    row = session.get(Country, country)
    if row is None:
        raise TrustError(f"country {country} is not in the corridor", code="trust.unknown-country")
    registry.set_root_certificate(row, root.certificate)
    made: list[StoredKey] = []
    for participant in registry.participants(session, country):
        usable = [
            k
            for k in registry.keys(session, owner=participant.id)
            if k.state in (KeyState.PENDING, KeyState.ACTIVE)
        ]
        if usable:
            continue
        key = _new_key(session, participant, root, provider, now)
        apply_transition(key, "activate", now)
        made.append(key)
    if made:
        changes = [_publish(k, now) for k in made] + [
            Change("activate", k.key_id, now) for k in made
        ]
        issue_update(session, country, changes, root.signer, now=now)
    session.flush()
    return made


def rotate(
    session: Session, owner: str, root: RootCA, provider: KeyProvider, now: datetime
) -> StoredKey:
    """Stage one: publish a new pending key for ``owner``; it verifies but does not sign yet."""
    participant = _participant(session, owner)
    if any(k.state == KeyState.PENDING for k in registry.keys(session, owner=owner)):
        raise TrustError(
            f"{owner} already has a pending key: activate it first", code="trust.key-state"
        )
    key = _new_key(session, participant, root, provider, now)
    issue_update(session, participant.country, [_publish(key, now)], root.signer, now=now)
    return key


def activate(session: Session, owner: str, root: RootCA, now: datetime) -> StoredKey:
    """Stage two: the pending key becomes the signing key; the active one retires."""
    participant = _participant(session, owner)
    owned = registry.keys(session, owner=owner)
    pending = [k for k in owned if k.state == KeyState.PENDING]
    if not pending:
        raise TrustError(f"{owner} has no pending key to activate", code="trust.key-state")
    new = pending[-1]
    changes = []
    for old in owned:
        if old.state == KeyState.ACTIVE:
            apply_transition(old, "retire", now)
            changes.append(Change("retire", old.key_id, now))
    apply_transition(new, "activate", now)
    changes.insert(0, Change("activate", new.key_id, now))
    issue_update(session, participant.country, changes, root.signer, now=now)
    return new


def revoke(session: Session, key: str, reason: str, root: RootCA, now: datetime) -> StoredKey:
    """Revoke at once: nothing recorded from ``now`` on is accepted under this key."""
    row = session.get(StoredKey, key)
    if row is None:
        matches = [k for k in registry.keys(session) if k.key_id.startswith(key)] if key else []
        if len(matches) != 1:
            raise TrustError(f"no single key starts with {key!r}", code="trust.unknown-key")
        row = matches[0]
    apply_transition(row, "revoke", now, reason)
    issue_update(
        session,
        row.country,
        [Change("revoke", row.key_id, now, reason=reason)],
        root.signer,
        now=now,
    )
    return row


def signer_for(session: Session, owner: str, providers: dict[str, KeyProvider]) -> Signer:
    """The signer of ``owner``'s active key, from the provider that holds it."""
    row = registry.signing_key(session, owner)
    provider = providers.get(row.provider or "")
    if provider is None or row.provider_ref is None:
        raise TrustError(
            f"the private key of {owner} is not held by this node", code="trust.no-signing-key"
        )
    return provider.signer(
        row.provider_ref, x509.load_pem_x509_certificate(row.certificate.encode())
    )


def _participant(session: Session, owner: str) -> registry.Participant:
    participant = registry.participant(session, owner)
    if participant is None:
        raise TrustError(f"no participant {owner!r}", code="trust.unknown-participant")
    return participant


def _new_key(
    session: Session,
    participant: registry.Participant,
    root: RootCA,
    provider: KeyProvider,
    now: datetime,
    algorithm: Algorithm = Algorithm.ES256,
) -> StoredKey:
    registered_root = registry.root_certificate(session, participant.country)
    if key_id(registered_root) != key_id(root.certificate):
        raise TrustError(
            f"the root CA given is not {participant.country}'s", code="trust.update-not-by-root"
        )
    public, reference = provider.generate(participant.id, algorithm)
    owner = pki.Owner(participant.country, participant.kind, participant.id, participant.name)
    certificate = root.issue(public, owner, now)
    row = StoredKey(
        key_id=key_id(certificate),
        country=participant.country,
        owner_kind=participant.kind.value,
        owner_id=participant.id,
        certificate=certificate.public_bytes(Encoding.PEM).decode("ascii"),
        algorithm=algorithm.value,
        state=KeyState.PENDING.value,
        published_at=now,
        provider=provider.name,
        provider_ref=reference,
    )
    session.add(row)
    session.flush()
    return row


def _publish(row: StoredKey, now: datetime) -> Change:
    return Change(
        "publish",
        row.key_id,
        now,
        owner_kind=OwnerKind(row.owner_kind),
        owner=row.owner_id,
        certificate=row.certificate,
    )
