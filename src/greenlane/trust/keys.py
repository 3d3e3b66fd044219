"""What a registered key is, and when it may sign or verify.

A key is named by its ``key_id``: the SHA-256 of its SubjectPublicKeyInfo, in
hex, so the same key has the same name in both countries' registries, in a JWS
``kid`` and in an evidence entry, whatever certificate carries it.

Lifecycle: ``pending -> active -> retired``, or ``revoked`` from any state at
once. Whether a key was good is judged at the time the receiving node
*recorded* a document or message, never by a date written inside it:

* pending   verifies (it is published before it signs, so the partner knows it
            when the first signature arrives), never signs;
* active    signs and verifies;
* retired   no longer signs; verifies what is recorded up to ``retired_at``
            plus a grace period (messages signed just before a rotation are
            still in flight, and retries keep their signature's key);
* revoked   verifies nothing recorded at or after ``revoked_at``; what was
            recorded before stays as judged then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


class KeyState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


class Role(StrEnum):
    """What an agency does in the corridor; a node has no role, it carries messages."""

    NPPO = "nppo"
    VETERINARY = "veterinary"
    CUSTOMS = "customs"


class OwnerKind(StrEnum):
    AGENCY = "agency"
    NODE = "node"


RETIRED_GRACE = timedelta(days=7)
"""How long after retirement a key still verifies what is recorded (in-flight retries)."""


def public_key_id(public_key: PublicKeyTypes) -> str:
    """A key's name: SHA-256 of its SubjectPublicKeyInfo (DER), lower-case hex."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def key_id(certificate: x509.Certificate) -> str:
    """The name of the key a certificate carries."""
    return public_key_id(certificate.public_key())


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """A key in the registry, with its owner and the times of its lifecycle."""

    key_id: str
    country: str
    owner: str
    owner_kind: OwnerKind
    roles: frozenset[Role]
    certificate: x509.Certificate
    state: KeyState
    published_at: datetime
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None

    def refusal_at(self, recorded_at: datetime, grace: timedelta = RETIRED_GRACE) -> str | None:
        """Why this key cannot vouch for something recorded at ``recorded_at``; None if it can."""
        if self.revoked_at is not None and recorded_at >= self.revoked_at:
            return f"key {self.key_id[:16]} was revoked at {self.revoked_at.isoformat()}"
        if recorded_at < self.published_at:
            return f"key {self.key_id[:16]} was not yet published at {recorded_at.isoformat()}"
        if self.retired_at is not None and recorded_at >= self.retired_at + grace:
            return (
                f"key {self.key_id[:16]} was retired at {self.retired_at.isoformat()} "
                f"(grace {int(grace.total_seconds())} s)"
            )
        cert = self.certificate
        if not cert.not_valid_before_utc <= recorded_at <= cert.not_valid_after_utc:
            return (
                f"certificate of key {self.key_id[:16]} is valid only from "
                f"{cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()}"
            )
        return None


class KeyLookup(Protocol):
    """Where verification finds a registered key by its id (the registry, or a bundle)."""

    def key(self, key_id: str) -> RegisteredKey | None: ...
