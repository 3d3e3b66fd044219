"""Certificates as a node tracks them: one row per issuing country and number, status forward only.

The same rules serve both sides, so a certificate reads the same in Baku and
in Moscow: a status moves only up its ranks (:func:`status_move`), a
replacement marks the certificate it replaces ``superseded``, and the same
number arriving again with other content at the same status is kept and
flagged for the officer instead of overwriting what was there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import rfc8785
from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from greenlane.exchange.tracking import CertificateStatus, StatusMove, status_move
from greenlane.store.models import Certificate, FeedEvent
from greenlane.trust.keys import Role

Direction = Literal["issued", "received"]

VETERINARY_TYPES = frozenset({"852", "853"})
"""Sanitary and veterinary certificate types; the other SPS types are phytosanitary."""


def role_for(document_type: str) -> Role:
    """The agency role that issues (and at the border, reads) a certificate type."""
    return Role.VETERINARY if document_type in VETERINARY_TYPES else Role.NPPO


def in_field(roles: frozenset[Role], document_type: str) -> bool:
    """Whether an agency with ``roles`` deals with this type: customs deals with all."""
    return Role.CUSTOMS in roles or role_for(document_type) in roles


@dataclass(frozen=True, slots=True)
class Recorded:
    certificate: Certificate
    move: StatusMove
    duplicate_number: bool
    """The number was known with other content at the same status."""
    superseded: Certificate | None
    """The certificate this one replaced, now marked superseded."""


def find(session: Session, direction: Direction, issuer: str, number: str) -> Certificate | None:
    return session.scalar(
        select(Certificate).where(
            Certificate.direction == direction,
            Certificate.issuer_country == issuer,
            Certificate.number == number,
        )
    )


def record(
    session: Session,
    *,
    direction: Direction,
    issuer: str,
    destination: str,
    number: str,
    document_type: str,
    status: CertificateStatus,
    document_id: int,
    at: datetime,
    agency: str | None = None,
    replaces: str | None = None,
) -> Recorded:
    """Store a version of a certificate, moving its status only forward; the caller commits."""
    # One query finds both the certificate and any replacement of it already here.
    found = list(
        session.scalars(
            select(Certificate)
            .where(
                Certificate.direction == direction,
                Certificate.issuer_country == issuer,
                or_(Certificate.number == number, Certificate.replaces == number),
            )
            .order_by(Certificate.id)
        )
    )
    row = next((c for c in found if c.number == number), None)
    later = next((c for c in found if c.number != number), None)
    duplicate = False
    if row is None:
        row = Certificate(
            direction=direction,
            issuer_country=issuer,
            destination_country=destination,
            number=number,
            document_type=document_type,
            status=status.value,
            agency=agency,
            document_id=document_id,
            replaces=replaces,
            duplicate_number=False,
            created_at=at,
            updated_at=at,
        )
        session.add(row)
        move = StatusMove.APPLY
        if later is not None:
            _superseded_already(row, later)
    else:
        move = status_move(CertificateStatus(row.status), status)
        if move is StatusMove.APPLY:
            row.status = status.value
            row.document_id = document_id
            row.updated_at = at
        elif move is StatusMove.SAME and row.document_id != document_id:
            duplicate = row.duplicate_number = True
            row.updated_at = at
    superseded = None
    if replaces is not None and replaces != number:
        superseded = supersede(session, direction, issuer, replaces, by=number, at=at)
    session.flush()
    return Recorded(row, move, duplicate, superseded)


def _superseded_already(row: Certificate, later: Certificate) -> None:
    """Mark a newly stored certificate superseded when its replacement is already here.

    Messages may arrive out of order (a retried original after its
    replacement, a pull batch): the replacement names this number, so the
    certificate is born replaced whatever order the two came in.
    """
    row.replaced_by = later.number
    current = CertificateStatus(row.status)
    if status_move(current, CertificateStatus.SUPERSEDED) is StatusMove.APPLY:
        row.status = CertificateStatus.SUPERSEDED.value


def supersede(
    session: Session, direction: Direction, issuer: str, number: str, *, by: str, at: datetime
) -> Certificate | None:
    """Mark ``number`` replaced by ``by``; a certificate already final keeps its status."""
    old = find(session, direction, issuer, number)
    if old is None:
        return None
    old.replaced_by = by
    if status_move(CertificateStatus(old.status), CertificateStatus.SUPERSEDED) is StatusMove.APPLY:
        old.status = CertificateStatus.SUPERSEDED.value
    old.updated_at = at
    return old


def publish(
    session: Session,
    country: str,
    kind: str,
    certificate: Certificate | None,
    at: datetime,
    **extra: Any,
) -> None:
    """Add an event to the agencies' feed (polled with ``?after=``, pushed to webhooks).

    ``certificate`` is None for an arrival in quarantine, which is no certificate yet.
    """
    body: dict[str, Any] = {
        "kind": kind,
        "certificate": view(certificate) if certificate else None,
        **extra,
    }
    session.execute(
        insert(FeedEvent).values(
            country=country,
            kind=kind,
            certificate_id=certificate.id if certificate else None,
            data=rfc8785.dumps(body),
            created_at=at,
        )
    )


def view(certificate: Certificate) -> dict[str, Any]:
    """A certificate as the agency API shows it."""
    return {
        "id": certificate.id,
        "direction": certificate.direction,
        "number": certificate.number,
        "document_type": certificate.document_type,
        "status": certificate.status,
        "issuer_country": certificate.issuer_country,
        "destination_country": certificate.destination_country,
        "agency": certificate.agency,
        "replaces": certificate.replaces,
        "replaced_by": certificate.replaced_by,
        "duplicate_number": certificate.duplicate_number,
        "created_at": certificate.created_at.isoformat(),
        "updated_at": certificate.updated_at.isoformat(),
    }
