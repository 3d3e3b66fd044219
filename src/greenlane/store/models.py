"""Table models. Domain code sees these only through the services that own them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, MetaData, String, Text
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
