"""Personal data beside the evidence log: kept for a retention period, then erased.

Drivers', signatories' and officers' names are protected by law in both
countries (Russia's 152-FZ among them), so they never enter the append-only
log. The log gets ``hmac:<hex>``, an HMAC-SHA256 of the value under a random
salt kept with the value; erasing value and salt leaves the log verifying and
makes the commitment meaningless (a name cannot be guessed back from it).
While the row exists, :func:`matches` proves a value is the one logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from greenlane.store.models import PersonalData

RETENTION: dict[str, timedelta] = {
    "SPSCertificate": timedelta(days=5 * 365),
}
"""How long each document type keeps the people named in it; others use DEFAULT_RETENTION."""
DEFAULT_RETENTION = timedelta(days=3 * 365)


def _commit(salt: bytes, value: str) -> str:
    return "hmac:" + hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()


def keep(
    session: Session,
    *,
    document_type: str,
    reference: str,
    kind: str,
    value: str,
    at: datetime,
) -> tuple[PersonalData, str]:
    """Store a person's name for a document; returns the row and the commitment for the log."""
    salt = secrets.token_bytes(32)
    row = PersonalData(
        document_type=document_type,
        reference=reference,
        kind=kind,
        value=value,
        salt=salt,
        recorded_at=at,
        erase_after=at + RETENTION.get(document_type, DEFAULT_RETENTION),
    )
    session.add(row)
    session.flush()
    return row, _commit(salt, value)


def matches(row: PersonalData, commitment: str) -> bool:
    """Whether the kept value is the one committed to in the log (False once erased)."""
    if row.value is None or row.salt is None:
        return False
    return hmac.compare_digest(_commit(row.salt, row.value), commitment)


def erase_due(session: Session, now: datetime) -> int:
    """Erase every value past its retention period; returns how many were erased."""
    due = PersonalData.erase_after <= now
    rows = session.scalars(select(PersonalData).where(due, PersonalData.erased_at.is_(None))).all()
    for row in rows:
        row.value, row.salt, row.erased_at = None, None, now
    session.flush()
    return len(rows)
