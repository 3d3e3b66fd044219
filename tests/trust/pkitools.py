"""A small corridor PKI for signature tests: a root per country, signers, and a registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509

from greenlane.trust import pki
from greenlane.trust.keys import KeyState, OwnerKind, RegisteredKey, Role, key_id
from greenlane.trust.signers import Algorithm, SoftwareSigner

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
"""When the test PKI is made; test certificates are issued (and recorded) around it."""


@dataclass
class CorridorPki:
    """Roots by country, and the keys registered so far (a :class:`KeyLookup`)."""

    roots: dict[str, tuple[pki.PrivateKey, x509.Certificate]] = field(default_factory=dict)
    registered: dict[str, RegisteredKey] = field(default_factory=dict)

    def root(self, country: str) -> tuple[pki.PrivateKey, x509.Certificate]:
        if country not in self.roots:
            key = pki.generate_key()
            self.roots[country] = (
                key,
                pki.create_root(country, f"{country} corridor", key, now=T0 - timedelta(days=30)),
            )
        return self.roots[country]

    def signer(
        self,
        country: str = "AZ",
        algorithm: Algorithm = Algorithm.ES256,
        *,
        agency: str = "az-fsa",
        issued_at: datetime = T0 - timedelta(days=1),
        validity: timedelta = pki.ISSUED_VALIDITY,
    ) -> SoftwareSigner:
        """A new agency key with a certificate from ``country``'s root (not registered)."""
        root_key, root = self.root(country)
        private = pki.generate_key(algorithm)
        owner = pki.Owner(country, OwnerKind.AGENCY, agency, f"{agency} of {country}")
        certificate = pki.issue(
            root_key, root, private.public_key(), owner, now=issued_at, validity=validity
        )
        return SoftwareSigner.from_key(private, certificate)

    def register(
        self,
        signer: SoftwareSigner,
        *,
        country: str | None = None,
        roles: frozenset[Role] = frozenset({Role.NPPO}),
        published_at: datetime = T0 - timedelta(days=1),
        revoked_at: datetime | None = None,
    ) -> RegisteredKey:
        certificate = signer.certificate
        subject_country = certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COUNTRY_NAME)[
            0
        ].value
        key = RegisteredKey(
            key_id=key_id(certificate),
            country=country or str(subject_country),
            owner=str(
                certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
            ),
            owner_kind=OwnerKind.AGENCY,
            roles=roles,
            certificate=certificate,
            state=KeyState.REVOKED if revoked_at else KeyState.ACTIVE,
            published_at=published_at,
            activated_at=published_at,
            revoked_at=revoked_at,
        )
        self.registered[key.key_id] = key
        return key

    def key(self, key_id: str) -> RegisteredKey | None:
        return self.registered.get(key_id)
