"""Keeping documents as received, with their findings. The caller commits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from greenlane.findings import Finding, has_errors
from greenlane.store.models import StoredDocument, StoredFinding


def add_document(
    session: Session,
    *,
    raw: bytes,
    document_type: str,
    number: str | None,
    findings: Iterable[Finding],
    received_at: datetime | None = None,
) -> StoredDocument:
    """Store ``raw`` once: the same bytes twice give back the first row, unchanged.

    Written with two Core statements rather than through the unit of work (this
    runs for every envelope received); the object returned is not in the session.
    """
    digest = hashlib.sha256(raw).hexdigest()
    existing = session.scalar(select(StoredDocument).where(StoredDocument.sha256 == digest))
    if existing is not None:
        return existing
    findings = list(findings)
    values = {
        "sha256": digest,
        "document_type": document_type,
        "document_number": number,
        "raw": raw,
        "size": len(raw),
        "valid": not has_errors(findings),
        "received_at": received_at or datetime.now(UTC),
    }
    document_id = session.execute(
        insert(StoredDocument).values(values).returning(StoredDocument.id)
    ).scalar_one()
    rows = [
        {
            "document_id": document_id,
            "level": f.level.value,
            "area": f.area.value,
            "path": f.path,
            "code": f.code,
            "message": f.message,
        }
        for f in findings
    ]
    if rows:
        session.execute(insert(StoredFinding), rows)
    document = StoredDocument(id=document_id, **values)
    document.findings = [StoredFinding(**row) for row in rows]
    return document


def count_documents(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StoredDocument)) or 0
