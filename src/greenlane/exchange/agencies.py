"""Agency API tokens: made once, shown once, kept only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from greenlane.errors import GreenlaneError
from greenlane.store.models import Agency, ApiToken

PREFIX = "glt_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, agency: str, now: datetime, label: str = "") -> str:
    """A new token for ``agency`` (256 random bits); only its SHA-256 is stored."""
    if session.get(Agency, agency) is None:
        raise GreenlaneError(f"no agency {agency!r}", code="trust.unknown-participant")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(agency=agency, token_sha256=_digest(token), label=label, created_at=now))
    session.flush()
    return token


def agency_for(session: Session, token: str) -> str | None:
    """The agency a token belongs to, None for an unknown or revoked one."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    return row.agency


def revoke_token(session: Session, token_id: int, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise GreenlaneError(f"no token {token_id}", code="auth.invalid")
    row.revoked_at = now
    return row


def tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))
