"""Pull delivery, for a node that accepts no inbound connections: both ends of it.

The sending node keeps the envelope in its outbox (mode ``pull``) and answers
the receiving node's signed requests: list what is pending for you, fetch one
(signed afresh, like a push attempt), take my receipt (:func:`addressee`, then
:func:`greenlane.exchange.delivery.accept_receipt`). The receiving node's
:class:`Poller` runs that loop and feeds each envelope through the same
:func:`greenlane.exchange.inbound.receive` as a push, so both modes store,
judge and receipt identically; the hub's acknowledgements (plain, with
warnings, failed as not readable) are the receipt's tracking state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from greenlane.errors import GreenlaneError
from greenlane.exchange import delivery, inbound, peers
from greenlane.exchange.context import NodeContext
from greenlane.exchange.tracking import TrackingState
from greenlane.store.models import OutboxMessage
from greenlane.trust.messages import sign_message

log = logging.getLogger("greenlane.pull")

MAX_LIST = 500
LIST_LIMIT = 100
"""Envelopes a poller asks for per partner and round; a full list means ask again at once."""


# -- the sending node's side ----------------------------------------------------------------


def pending_for(ctx: NodeContext, node: str, limit: int = 100) -> list[dict[str, Any]]:
    """The envelopes waiting for ``node``, oldest first, as the hub lists them."""
    columns = {
        "MessageId": OutboxMessage.message_id,
        "CertificateType": OutboxMessage.document_type,
        "CertificateStatus": OutboxMessage.document_status,
        "NPPOCertificateNumber": OutboxMessage.document_number,
        "EnvelopeSHA256": OutboxMessage.envelope_sha256,
        "HUBTrackingInfo": OutboxMessage.state,
    }
    with ctx.reads() as session:  # the header fields only, not the envelopes themselves
        rows = session.execute(
            select(*columns.values())
            .where(OutboxMessage.receiver_node == node, OutboxMessage.state == delivery.PENDING)
            .order_by(OutboxMessage.id)
            .limit(min(max(1, limit), MAX_LIST))
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]


def addressee(ctx: NodeContext, message_id: str) -> tuple[int, str]:
    """(outbox id, receiving node) of an envelope we hold; ``delivery.not-found`` if none."""
    with ctx.reads() as session:
        found = session.execute(
            select(OutboxMessage.id, OutboxMessage.receiver_node).where(
                OutboxMessage.message_id == message_id
            )
        ).first()
    if found is None:
        raise GreenlaneError(f"no envelope {message_id}", code="delivery.not-found")
    return int(found[0]), str(found[1])


def fetch(ctx: NodeContext, node: str, message_id: str) -> tuple[bytes, str]:
    """One envelope for ``node`` and a fresh signature of it; each fetch is an attempt."""
    with ctx.reads() as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        signer = ctx.signer(session, ctx.node_id)
    if row is None or row.receiver_node != node:
        raise GreenlaneError(f"no envelope {message_id} for {node}", code="delivery.not-found")
    if row.state != delivery.PENDING and not TrackingState(row.state).is_delivered:
        raise GreenlaneError(f"envelope {message_id} is {row.state}", code="delivery.not-pending")
    now = ctx.clock()
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(attempts=OutboxMessage.attempts + 1, last_attempt_at=now)
        )
    ctx.metrics.attempts.labels("pull").inc()
    token = sign_message(
        signer, sender=ctx.node_id, message_id=row.message_id, body=row.envelope, attempt_at=now
    )
    return row.envelope, token


# -- the receiving node's side --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pulled:
    message_id: str
    tracking: TrackingState | None
    error: str | None = None


class Poller(peers.PeerLoop):
    """Fetches what partner nodes hold for us, receives it, and posts the receipts back."""

    name = "greenlane-pull"

    def __init__(self, ctx: NodeContext, *, interval: float | None = None) -> None:
        super().__init__(ctx, interval or ctx.settings.pull_interval_seconds)

    def run_once(self) -> bool:
        return len(self.poll_once()) >= LIST_LIMIT

    def _signed_get(self, endpoint: str, target: str) -> httpx.Response:
        return peers.signed_get(self.ctx, self._client, endpoint, target)

    def poll_once(self) -> list[Pulled]:
        """One round over every partner node; returns what came of each envelope."""
        results: list[Pulled] = []
        for node in self.ctx.partner_nodes():
            endpoint = node.endpoint.rstrip("/")
            try:
                listing = self._signed_get(endpoint, f"{peers.API}/envelopes?limit={LIST_LIMIT}")
                listing.raise_for_status()
                items = listing.json()["envelopes"]
            except (httpx.HTTPError, GreenlaneError, ValueError, KeyError, TypeError) as exc:
                # GreenlaneError: with TLS, the server is not the node it must be
                log.warning("pull from %s failed: %s", node.id, exc)
                continue
            for item in items:
                results.append(self._take(endpoint, str(item.get("MessageId", ""))))
        return results

    def _take(self, endpoint: str, message_id: str) -> Pulled:
        try:
            response = self._signed_get(endpoint, f"{peers.API}/envelopes/{message_id}")
            response.raise_for_status()
        except (httpx.HTTPError, GreenlaneError) as exc:
            return Pulled(message_id, None, f"fetch: {exc}")
        try:
            answer = inbound.receive(
                self.ctx, response.content, response.headers.get(peers.SIGNATURE_HEADER, "")
            )
        except GreenlaneError as exc:  # refused at the envelope: logged, nothing stored
            return Pulled(message_id, None, f"{exc.code}: {exc}")
        try:
            posted = self._client.post(
                f"{endpoint}{peers.API}/envelopes/{message_id}/receipt",
                content=answer.receipt,
                headers={
                    peers.SIGNATURE_HEADER: answer.token,
                    "Content-Type": peers.RECEIPT_MEDIA_TYPE,
                },
            )
            posted.raise_for_status()
        except (httpx.HTTPError, GreenlaneError) as exc:  # stored; the receipt goes next fetch
            return Pulled(message_id, answer.tracking, f"receipt: {exc}")
        return Pulled(message_id, answer.tracking)
