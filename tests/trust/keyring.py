"""Registered keys in memory, made by a real root CA, for tests that need no registry tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from greenlane.trust import pki
from greenlane.trust.keys import KeyState, OwnerKind, RegisteredKey, Role, key_id
from greenlane.trust.signers import Algorithm, SoftwareSigner

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class Keyring:
    """A registry of a few keys: implements :class:`greenlane.trust.keys.KeyLookup`."""

    def __init__(self, country: str = "AZ") -> None:
        self.country = country
        self.root_key = pki.generate_key()
        self.root = pki.create_root(country, country, self.root_key, now=T0 - timedelta(days=1))
        self.registered: dict[str, RegisteredKey] = {}

    def make(
        self, owner: str, kind: OwnerKind = OwnerKind.NODE, algorithm: Algorithm = Algorithm.ES256
    ) -> SoftwareSigner:
        private = pki.generate_key(algorithm)
        certificate = pki.issue(
            self.root_key,
            self.root,
            private.public_key(),
            pki.Owner(self.country, kind, owner, owner),
            now=T0 - timedelta(days=1),
        )
        self.registered[key_id(certificate)] = RegisteredKey(
            key_id=key_id(certificate),
            country=self.country,
            owner=owner,
            owner_kind=kind,
            roles=frozenset({Role.NPPO}) if kind is OwnerKind.AGENCY else frozenset(),
            certificate=certificate,
            state=KeyState.ACTIVE,
            published_at=T0 - timedelta(days=1),
            activated_at=T0 - timedelta(days=1),
        )
        return SoftwareSigner.from_key(private, certificate)

    def add(self, other: Keyring) -> Keyring:
        """Also know the keys of ``other`` (the partner's, as registry updates would bring)."""
        self.registered.update(other.registered)
        return self

    def key(self, key_id: str) -> RegisteredKey | None:
        return self.registered.get(key_id)
