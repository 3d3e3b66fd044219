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


# --- exchange: certificates, outbox, inbox, agency access --------------------------------------


class Certificate(Base):
    """A certificate as this node knows it: one row per issuing country and number.

    ``direction`` is ``issued`` for our own agencies' certificates and
    ``received`` for the partner's. ``document_id`` is the latest version (a
    withdrawal is a new, re-signed version); statuses only move forward
    (:func:`greenlane.exchange.tracking.status_move`).
    """

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(10))
    issuer_country: Mapped[str] = mapped_column(String(2))
    destination_country: Mapped[str] = mapped_column(String(2))
    number: Mapped[str] = mapped_column(String(256))
    document_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    agency: Mapped[str | None] = mapped_column(String(64))
    """The issuing agency (ours) or None (the partner's, named inside the document)."""
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    replaces: Mapped[str | None] = mapped_column(String(256))
    replaced_by: Mapped[str | None] = mapped_column(String(256))
    duplicate_number: Mapped[bool] = mapped_column(default=False)
    """Set when the number arrived again with other content: shown to the officer."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("direction", "issuer_country", "number"),
        Index("ix_certificates_updated", "updated_at"),
        Index("ix_certificates_replaces", "direction", "issuer_country", "replaces"),
    )


class OutboxMessage(Base):
    """One envelope to send to one node, written with its document in one transaction.

    The encoded envelope never changes; each attempt signs it afresh. A worker
    claims a due row by setting ``claimed_until`` (PostgreSQL: ``FOR UPDATE
    SKIP LOCKED``), so two workers never send the same envelope at once.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    receiver_node: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(10))
    """``push`` (we send) or ``pull`` (the receiver fetches)."""
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    document_type: Mapped[str] = mapped_column(String(64))
    document_status: Mapped[str] = mapped_column(String(64))
    document_number: Mapped[str] = mapped_column(String(256))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(30))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the current round of attempts began (creation, or an operator's retry):
    the maximum age counts from here."""
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_number: Mapped[int | None]
    """The receiver's number for it, from its receipt (the hub's hubDeliveryNumber)."""
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    receipt_token: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_due", "state", "mode", "next_attempt_at"),)


class InboxMessage(Base):
    """One envelope received, stored before its receipt is signed; the id is its delivery number."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_node: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(36))
    from_country: Mapped[str] = mapped_column(String(2))
    document_type: Mapped[str] = mapped_column(String(64))
    document_status: Mapped[str] = mapped_column(String(64))
    document_number: Mapped[str] = mapped_column(String(256))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    """The sender's signature of the first attempt: with the envelope, proof of what came."""
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"), index=True)
    state: Mapped[str] = mapped_column(String(30))
    quarantined: Mapped[bool] = mapped_column(default=False)
    """Unreadable or failing its checks: kept with its findings for an officer to see."""
    duplicate_number: Mapped[bool] = mapped_column(default=False)
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("sender_node", "message_id"),)


class ApiToken(Base):
    """An agency's API token, kept only as its SHA-256 (tokens are 256 random bits)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    """A request an agency made with an Idempotency-Key, and the answer it got."""

    __tablename__ = "idempotency_keys"

    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeedEvent(Base):
    """What an agency may want to hear about (an arrival, a status change), in order.

    The id is the cursor agencies poll with (``?after=``) and webhooks advance.
    """

    __tablename__ = "feed_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    """The country whose agencies see the event (ours)."""
    kind: Mapped[str] = mapped_column(String(40))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    """Canonical JSON, the event as agencies get it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subscription(Base):
    """An agency's webhook: events after ``cursor`` are posted, HMAC-signed, in order."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    cursor: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
