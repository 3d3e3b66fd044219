"""Table models. Domain code sees these only through the services that own them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from greenlane.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoredDocument(Base):
    """A document exactly as received (signatures are over bytes), with its verdict."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    document_type: Mapped[str] = mapped_column(String(40))
    document_number: Mapped[str | None] = mapped_column(String(200))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    valid: Mapped[bool]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    findings: Mapped[list[StoredFinding]] = relationship(
        back_populates="document",
        cascade="all, delete-orphan",
        order_by="StoredFinding.id",
        lazy="selectin",
    )

    __table_args__ = (Index("ix_documents_type_number", "document_type", "document_number"),)


class StoredFinding(Base):
    """One finding about a stored document, in the shape of :class:`greenlane.findings.Finding`."""

    __tablename__ = "document_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(10))
    area: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text)
    document: Mapped[StoredDocument] = relationship(back_populates="findings")


# --- trust: the participant registry and its keys -------------------------------------------


class Country(Base):
    """A corridor country, with the root CA certificate its partner pins."""

    __tablename__ = "countries"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    root_certificate: Mapped[str | None] = mapped_column(Text)
    """PEM; None until the country's root CA exists (``greenlane keys init``)."""
    registry_sequence: Mapped[int] = mapped_column(default=0)
    """The last registry update applied (received) or issued (own country)."""


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    country: Mapped[str] = mapped_column(ForeignKey("countries.code"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    roles: Mapped[str] = mapped_column(String(100))
    """Comma-separated, sorted: nppo, veterinary, customs."""


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    country: Mapped[str] = mapped_column(ForeignKey("countries.code"), index=True)
    endpoint: Mapped[str] = mapped_column(String(500))
    tls_identity: Mapped[str | None] = mapped_column(String(500))


class StoredKey(Base):
    """A signing key of an agency or node: its certificate and lifecycle, never the private key.

    ``provider`` and ``provider_ref`` say where the private key of one of this
    node's own keys lives (a PKCS#8 file, a PKCS#11 label); both are None for a
    partner's key.
    """

    __tablename__ = "keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    country: Mapped[str] = mapped_column(ForeignKey("countries.code"), index=True)
    owner_kind: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[str] = mapped_column(String(64))
    certificate: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_keys_owner", "owner_kind", "owner_id"),)


class RegistryUpdate(Base):
    """A key change as it travels between countries: canonical JSON signed by the root CA."""

    __tablename__ = "registry_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    sequence: Mapped[int]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("country", "sequence"),)


class SeenMessage(Base):
    """A message id received from a sender, the bytes it is bound to, and its last attempt."""

    __tablename__ = "seen_messages"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- trust: the evidence log -----------------------------------------------------------------


class EvidenceEntry(Base):
    """One event in the append-only log: canonical JSON (RFC 8785) and its Merkle leaf hash.

    Written only by :mod:`greenlane.trust.evidence`; triggers refuse UPDATE and
    DELETE on both databases. Holds digests and references, never personal data.
    """

    __tablename__ = "evidence_entries"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    subject: Mapped[str | None] = mapped_column(String(200), index=True)
    """What the entry is about, for finding it again (a document's SHA-256, a key id)."""
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class EvidenceState(Base):
    """The log's size and Merkle frontier, so an append never rereads the log (one row)."""

    __tablename__ = "evidence_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int]
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class EvidenceCheckpoint(Base):
    """A signed (size, root, time) of a log, ours or the partner's, and its countersignature."""

    __tablename__ = "evidence_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    log: Mapped[str] = mapped_column(String(64))
    """The node whose log this is."""
    size: Mapped[int]
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    countersigner: Mapped[str | None] = mapped_column(String(64))
    counter_key_id: Mapped[str | None] = mapped_column(String(64))
    countersignature: Mapped[bytes | None] = mapped_column(LargeBinary)
    countersigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("log", "size"),)


class PersonalData(Base):
    """Names of people (drivers, signatories, officers), erasable; the log holds only a commitment.

    The commitment in the log is HMAC-SHA256 of the value under this row's
    random salt: once value and salt are erased, the log still verifies and
    nothing in it can be tied back to the person.
    """

    __tablename__ = "personal_data"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_type: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[str | None] = mapped_column(Text)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    erase_after: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
