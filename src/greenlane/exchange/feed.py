"""The agencies' event feed: which certificates and events an agency may see.

One rule for the polled feed (``GET /api/v1/events``) and for webhooks, so an
agency hears the same events whichever way it listens: an agency sees what it
issued and, of what arrived for its country, what is in its field (an NPPO the
phytosanitary certificates, a veterinary service the veterinary ones, customs
all). An arrival in quarantine is no certificate yet; every agency of the
country sees it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from greenlane.exchange.certificates import in_field
from greenlane.store.models import Certificate, FeedEvent
from greenlane.trust import registry
from greenlane.trust.keys import Role


def roles(session: Session, agency_id: str) -> frozenset[Role]:
    participant = registry.participant(session, agency_id)
    return participant.roles if participant else frozenset()


def may_see(roles: frozenset[Role], agency_id: str, certificate: Certificate) -> bool:
    """Whether the agency (holding ``roles``) may see this certificate and the events about it."""
    if certificate.direction == "issued":
        return certificate.agency == agency_id
    return in_field(roles, certificate.document_type)


def event_body(event: FeedEvent) -> dict[str, Any]:
    """An event as agencies get it, polled or pushed: its id (the cursor) and its data."""
    data: dict[str, Any] = json.loads(event.data)
    return {"id": event.id, **data}


def events(
    session: Session, country: str, agency_id: str, *, after: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` events after ``after`` and those the agency may see, with the cursor.

    The cursor is the last event looked at, seen or not, so a page of events
    the agency may not see still moves it on.
    """
    rows = session.scalars(
        select(FeedEvent)
        .where(FeedEvent.id > after, FeedEvent.country == country)
        .order_by(FeedEvent.id)
        .limit(limit)
    )
    held = roles(session, agency_id)
    items: list[dict[str, Any]] = []
    last = after
    for event in rows:
        last = event.id
        certificate = (
            session.get(Certificate, event.certificate_id) if event.certificate_id else None
        )
        if certificate is not None and not may_see(held, agency_id, certificate):
            continue
        items.append(event_body(event))
    return items, last
