"""Storage on both backends: migrations, drift, documents, time zones, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from greenlane.codes import finding
from greenlane.store import migrate
from greenlane.store.documents import add_document, count_documents
from greenlane.store.models import Base, StoredDocument, StoredFinding


def _doc(session: Session, raw: bytes = b"<a/>", **kwargs: object) -> StoredDocument:
    values: dict[str, object] = {
        "raw": raw,
        "document_type": "SPSCertificate",
        "number": "AZ-2026-000123",
        "findings": [],
    }
    values.update(kwargs)
    return add_document(session, **values)  # type: ignore[arg-type]


def test_database_is_at_head_with_no_drift(engine: Engine) -> None:
    """The migrations build exactly the tables the models describe."""
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.drift(engine) == []


def test_drift_is_detected(engine: Engine) -> None:
    """A model change without its migration shows up as drift."""
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("not_migrated", metadata, Column("id", Integer, primary_key=True))
    differences = migrate.drift(engine, metadata)
    assert any(d[0] == "add_table" and d[1].name == "not_migrated" for d in differences)


def test_document_round_trip_keeps_bytes_and_findings(session: Session) -> None:
    """Stored bytes come back identical, with their findings in order and the verdict."""
    raw = "<r>Bakı — Москва</r>".encode()
    findings = [
        finding("xml.doctype", "first", "/r"),
        finding("xml.unknown-root", "second", "/*"),
    ]
    stored = _doc(session, raw, findings=findings)
    session.expire_all()
    loaded = session.get(StoredDocument, stored.id)
    assert loaded is not None
    assert loaded.raw == raw
    assert loaded.size == len(raw)
    assert loaded.valid is False
    assert [f.code for f in loaded.findings] == ["xml.doctype", "xml.unknown-root"]


def test_same_bytes_are_stored_once(session: Session) -> None:
    """Adding the same bytes twice returns the first row and adds nothing."""
    first = _doc(session, b"<once/>")
    second = _doc(session, b"<once/>", number="OTHER")
    assert first.id == second.id
    assert second.document_number == "AZ-2026-000123"
    assert count_documents(session) == 1


def test_sha256_is_unique_in_the_database(session: Session) -> None:
    """The uniqueness of stored bytes is enforced by the database, not only by the service."""
    _doc(session, b"<dup/>")
    session.add(
        StoredDocument(
            sha256=session.scalars(select(StoredDocument.sha256)).one(),
            document_type="x",
            document_number=None,
            raw=b"<dup/>",
            size=6,
            valid=True,
            received_at=datetime.now(UTC),
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_times_are_stored_in_utc_and_come_back_aware(session: Session) -> None:
    """A Baku time (UTC+4) is stored as the same instant and read back in UTC."""
    baku = timezone(timedelta(hours=4))
    stored = _doc(session, received_at=datetime(2026, 9, 14, 8, 30, tzinfo=baku))
    session.expire_all()
    loaded = session.get(StoredDocument, stored.id)
    assert loaded is not None
    assert loaded.received_at == datetime(2026, 9, 14, 4, 30, tzinfo=UTC)
    assert loaded.received_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(session: Session) -> None:
    """A time without a zone is never guessed at."""
    with pytest.raises(StatementError, match="naive datetime refused"):
        _doc(session, received_at=datetime(2026, 9, 14, 8, 30))


def test_foreign_keys_are_enforced(session: Session) -> None:
    """A finding cannot point at a document that does not exist (SQLite too)."""
    session.add(
        StoredFinding(
            document_id=999_999, level="error", area="xml", path="", code="c", message="m"
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_deleting_a_document_deletes_its_findings(session: Session) -> None:
    """Findings go with their document, by the database's own cascade."""
    stored = _doc(session, findings=[finding("xml.doctype", "m")])
    session.execute(text("DELETE FROM documents WHERE id = :id"), {"id": stored.id})
    remaining = session.scalar(
        select(StoredFinding.id).where(StoredFinding.document_id == stored.id)
    )
    assert remaining is None


def test_uncommitted_work_is_invisible_to_other_connections(
    session: Session, engine: Engine
) -> None:
    """The test transaction really is a transaction: another connection cannot see it."""
    _doc(session, b"<private/>")
    assert count_documents(session) == 1
    with engine.connect() as other:
        assert other.scalar(text("SELECT count(*) FROM documents")) == 0


def test_sqlite_pragmas(engine: Engine) -> None:
    """SQLite runs in WAL mode, with foreign keys on and a busy timeout."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_postgres_is_a_real_server(engine: Engine) -> None:
    """The PostgreSQL leg runs against a real server, not an emulation."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SHOW server_version_num").scalar()
    assert int(str(version)) >= 130000
