"""The sender's side of delivery: claim due envelopes, send them, and record only verified receipts.

A message moves ``PendingDelivery`` -> a delivered state when a receipt that
verifies comes back (pushed: in the answer; pulled: posted by the receiver),
or -> ``FailedDelivery`` after the configured attempts or age, with an alert
in the log and the metrics. An operator sends a failed one again by hand
(:func:`retry_by_hand`), and a receipt that arrives late still moves it to
delivered (:func:`greenlane.exchange.tracking.tracking_may_move`).

Claims: a worker takes a batch of due envelopes by setting ``claimed_until``
(a lease of ``GREENLANE_DELIVERY_LEASE_SECONDS``, at least twice the request
timeout) and counting the attempt, in one short transaction; on PostgreSQL
the rows are selected ``FOR UPDATE SKIP LOCKED``, so two workers on one
database never take the same envelope. A worker that dies leaves a lease that
simply runs out; the receiver's duplicate check makes the resend harmless.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from greenlane.errors import GreenlaneError
from greenlane.exchange import certificates, peers
from greenlane.exchange.context import NodeContext
from greenlane.exchange.receipts import VerifiedReceipt, verify_receipt
from greenlane.exchange.tracking import TrackingState, tracking_may_move
from greenlane.store.models import Certificate, OutboxMessage
from greenlane.trust import evidence
from greenlane.trust.messages import sign_message
from greenlane.trust.registry import DatabaseKeys

log = logging.getLogger("greenlane.delivery")

PENDING = TrackingState.PENDING_DELIVERY.value
PER_REQUEST = 16
"""Envelopes per push request when several are due for one node."""


def backoff(ctx: NodeContext, attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: half the step fixed, half random (never all at once)."""
    settings = ctx.settings
    step = min(
        settings.delivery_backoff_max_seconds,
        settings.delivery_backoff_seconds * 2 ** max(0, attempts - 1),
    )
    return timedelta(seconds=step / 2 + (rng or random).uniform(0, step / 2))


def claim(ctx: NodeContext, limit: int = 32, *, mode: str = "push") -> list[int]:
    """Take up to ``limit`` due envelopes for this worker; each claim counts as an attempt."""
    now = ctx.clock()
    with ctx.sessions() as session, session.begin():
        query = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.state == PENDING,
                OutboxMessage.mode == mode,
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        if not ctx.settings.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(
                    claimed_until=now + timedelta(seconds=ctx.settings.delivery_lease_seconds),
                    attempts=OutboxMessage.attempts + 1,
                    last_attempt_at=now,
                )
            )
    return ids


@dataclass(frozen=True, slots=True)
class Outcome:
    message_id: str
    state: TrackingState
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Attempt:
    outbox_id: int
    envelope: bytes
    token: str


def _prepare(ctx: NodeContext, outbox_ids: list[int]) -> tuple[list[Outcome], list[_Attempt], str]:
    """Sign this attempt of each envelope still pending (all for one node).

    Returns the outcomes of those no longer pending, the attempts, and the
    receiving node's endpoint.
    """
    done: list[Outcome] = []
    attempts: list[_Attempt] = []
    receivers: set[str] = set()
    with ctx.reads() as session:
        signer = ctx.signer(session, ctx.node_id)
        for outbox_id in outbox_ids:
            row = session.get(OutboxMessage, outbox_id)
            if row is None:
                raise GreenlaneError(f"no outbox message {outbox_id}", code="delivery.not-found")
            if row.state != PENDING:
                done.append(Outcome(row.message_id, TrackingState(row.state)))
                continue
            receivers.add(row.receiver_node)
            token = sign_message(
                signer,
                sender=ctx.node_id,
                message_id=row.message_id,
                body=row.envelope,
                attempt_at=ctx.clock(),
            )
            attempts.append(_Attempt(outbox_id, row.envelope, token))
    if len(receivers) > 1:
        raise ValueError("one push request goes to one node")
    endpoint = ctx.peer(receivers.pop()).endpoint.rstrip("/") if receivers else ""
    ctx.metrics.attempts.labels("push").inc(len(attempts))
    return done, attempts, endpoint


def _post(client: httpx.Client, url: str, **request: object) -> httpx.Response | str:
    """The answer to a push request, or why there is none (what a failed attempt records)."""
    try:
        response = client.post(url, **request)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return f"transport: {type(exc).__name__}: {exc}"
    except GreenlaneError as exc:  # with TLS: the server is not the node it must be
        return f"transport: {exc.code}: {exc}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {_error_code(response)}"
    return response


def _receipted(ctx: NodeContext, receipts: list[tuple[int, bytes, str]]) -> list[Outcome]:
    """Record the receipts that verify; a receipt refused is a failed attempt."""
    return [
        failed(ctx, outbox_id, f"receipt refused: {result.code}: {result}")
        if isinstance(result, GreenlaneError)
        else result
        for (outbox_id, _, _), result in zip(receipts, accept_receipts(ctx, receipts), strict=True)
    ]


def send(ctx: NodeContext, client: httpx.Client, outbox_id: int) -> Outcome:
    """One push attempt of a claimed envelope, signed afresh; records what came of it."""
    done, attempts, endpoint = _prepare(ctx, [outbox_id])
    if done:
        return done[0]
    (attempt,) = attempts
    response = _post(
        client,
        f"{endpoint}{peers.API}/envelopes",
        content=attempt.envelope,
        headers={peers.SIGNATURE_HEADER: attempt.token, "Content-Type": peers.ENVELOPE_MEDIA_TYPE},
    )
    if isinstance(response, str):
        return failed(ctx, outbox_id, response)
    token = response.headers.get(peers.SIGNATURE_HEADER, "")
    return _receipted(ctx, [(outbox_id, response.content, token)])[0]


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "no error body"


def accept_receipt(ctx: NodeContext, outbox_id: int, receipt: bytes, token: str) -> Outcome:
    """Verify a receipt for an envelope we sent and move its state; GreenlaneError if it fails.

    The receipt must be signed by the node the envelope went to and name the
    digest of the exact envelope bytes we keep. A second copy of a receipt
    (a retry answered again) changes nothing.
    """
    (result,) = accept_receipts(ctx, [(outbox_id, receipt, token)])
    if isinstance(result, GreenlaneError):
        raise result
    return result


def accept_receipts(
    ctx: NodeContext, items: list[tuple[int, bytes, str]]
) -> list[Outcome | GreenlaneError]:
    """:func:`accept_receipt` for several: verified first, then recorded in one transaction."""
    now = ctx.clock()
    verified: dict[int, VerifiedReceipt] = {}
    results: dict[int, Outcome | GreenlaneError] = {}
    with ctx.reads() as session:
        keys = DatabaseKeys(session)
        for outbox_id, receipt, token in items:
            row = session.get(OutboxMessage, outbox_id)
            if row is None:
                results[outbox_id] = GreenlaneError(
                    f"no outbox message {outbox_id}", code="delivery.not-found"
                )
                continue
            try:
                verified[outbox_id] = verify_receipt(
                    receipt,
                    token,
                    keys=keys,
                    expected_sender_node=row.receiver_node,
                    expected_digest=row.envelope_sha256,
                    recorded_at=now,
                )
            except GreenlaneError as refused:
                results[outbox_id] = refused
    moved: list[tuple[TrackingState, datetime]] = []
    if verified:
        tokens = {outbox_id: (receipt, token) for outbox_id, receipt, token in items}
        with ctx.sessions() as session, session.begin():
            events: list[evidence.Event] = []
            for outbox_id, check in verified.items():
                row = session.get(OutboxMessage, outbox_id)
                assert row is not None
                new, stored = check.receipt.tracking, TrackingState(row.state)
                if stored is new or not tracking_may_move(stored, new):
                    results[outbox_id] = Outcome(row.message_id, stored)
                    continue
                receipt, token = tokens[outbox_id]
                _record(ctx, session, row, check, receipt, token, now, events)
                moved.append((new, row.created_at))
                results[outbox_id] = Outcome(row.message_id, new)
            if events:
                evidence.append(session, events, at=now)
    for state, created in moved:
        ctx.metrics.deliveries.labels(state.value).inc()
        ctx.metrics.latency.observe(max(0.0, (now - created).total_seconds()))
    return [results[outbox_id] for outbox_id, _, _ in items]


def _record(
    ctx: NodeContext,
    session: Session,
    row: OutboxMessage,
    check: VerifiedReceipt,
    receipt: bytes,
    token: str,
    now: datetime,
    events: list[evidence.Event],
) -> None:
    new = check.receipt.tracking
    row.state = new.value
    row.delivered_at = now
    row.delivery_number = check.receipt.delivery_number
    row.receipt = receipt
    row.receipt_token = token
    row.claimed_until = None
    row.last_error = None
    events.append(
        evidence.Event(
            evidence.Kind.RECEIPT,
            row.message_id,
            {
                "direction": "received",
                "from": row.receiver_node,
                "signed_by": check.message.key_id,
                "receipt_sha256": check.message.digest,
                "tracking": new.value,
                "delivery_number": check.receipt.delivery_number,
            },
        )
    )
    certificate = session.get(Certificate, row.certificate_id) if row.certificate_id else None
    if certificate is not None:
        certificates.publish(
            session,
            ctx.country,
            "certificate.delivered",
            certificate,
            now,
            message_id=row.message_id,
            tracking=new.value,
            status=row.document_status,
            findings=[f.to_dict() for f in check.receipt.findings],
        )


def send_batch(ctx: NodeContext, client: httpx.Client, outbox_ids: list[int]) -> list[Outcome]:
    """Push several claimed envelopes for one node in one request, each signed afresh.

    Each envelope is receipted (or refused) on its own, exactly as if pushed
    alone; a failed request counts as a failed attempt of each.
    """
    if len(outbox_ids) == 1:
        return [send(ctx, client, outbox_ids[0])]
    done, attempts, endpoint = _prepare(ctx, outbox_ids)
    if not attempts:
        return done
    entries = [
        {"Envelope": base64.b64encode(a.envelope).decode("ascii"), "Signature": a.token}
        for a in attempts
    ]
    response = _post(client, f"{endpoint}{peers.API}/envelopes/batch", json={"Envelopes": entries})
    answers = _batch_answers(response, len(attempts))
    if isinstance(answers, str):
        return done + [failed(ctx, a.outbox_id, answers) for a in attempts]
    receipts: list[tuple[int, bytes, str]] = []
    for attempt, answer in zip(attempts, answers, strict=True):
        try:
            receipt = base64.b64decode(answer["Receipt"], validate=True)
            receipts.append((attempt.outbox_id, receipt, str(answer["Signature"])))
        except (KeyError, TypeError, ValueError, binascii.Error):
            code = answer.get("Error", {}).get("code") if isinstance(answer, dict) else None
            done.append(failed(ctx, attempt.outbox_id, f"refused: {code or 'malformed answer'}"))
    return done + _receipted(ctx, receipts)


def _batch_answers(response: httpx.Response | str, count: int) -> list[Any] | str:
    """The per-envelope answers of a batch request, or why there are none."""
    if isinstance(response, str):
        return response
    try:
        answers = response.json()["Results"]
    except (ValueError, KeyError, TypeError):
        answers = None
    if not isinstance(answers, list) or len(answers) != count:
        return "malformed batch answer"
    return answers


def failed(ctx: NodeContext, outbox_id: int, error: str) -> Outcome:
    """Record a failed attempt: schedule the next one, or give up after the last."""
    now = ctx.clock()
    settings = ctx.settings
    with ctx.sessions() as session, session.begin():
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.state != PENDING:
            state = TrackingState(row.state) if row else TrackingState.ENVELOPE_NOT_EXISTS
            return Outcome(row.message_id if row else "", state)
        row.last_error = error[:2000]
        row.claimed_until = None
        too_old = now - row.queued_at >= timedelta(seconds=settings.delivery_max_age_seconds)
        if row.attempts >= settings.delivery_max_attempts or too_old:
            row.state = TrackingState.FAILED_DELIVERY.value
            give_up = True
        else:
            row.next_attempt_at = now + backoff(ctx, row.attempts)
            give_up = False
        message_id, receiver, attempts = row.message_id, row.receiver_node, row.attempts
    if give_up:
        ctx.metrics.failures.inc()
        log.error(
            "ALERT delivery failed: message=%s to=%s attempts=%d last_error=%s; "
            "send it again with `greenlane deliveries retry %s`",
            message_id,
            receiver,
            attempts,
            error,
            message_id,
        )
        return Outcome(message_id, TrackingState.FAILED_DELIVERY, error)
    ctx.metrics.retries.inc()
    log.warning("delivery attempt %d of %s to %s failed: %s", attempts, message_id, receiver, error)
    return Outcome(message_id, TrackingState.PENDING_DELIVERY, error)


def expire_pull(ctx: NodeContext) -> int:
    """Give up on pulled envelopes nobody fetched in time (pushed ones fail in :func:`failed`)."""
    now = ctx.clock()
    limit = now - timedelta(seconds=ctx.settings.delivery_max_age_seconds)
    with ctx.sessions() as session, session.begin():
        rows = list(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.state == PENDING,
                    OutboxMessage.mode == "pull",
                    OutboxMessage.queued_at < limit,
                )
            )
        )
        for row in rows:
            row.state = TrackingState.FAILED_DELIVERY.value
            row.last_error = "not fetched by the receiving node within the maximum age"
            log.error(
                "ALERT delivery failed: message=%s to=%s (never fetched)",
                row.message_id,
                row.receiver_node,
            )
    ctx.metrics.failures.inc(len(rows))
    return len(rows)


def find_message(session: Session, reference: str) -> OutboxMessage | None:
    """An outbox message by its number or message id."""
    if reference.isdigit():
        return session.get(OutboxMessage, int(reference))
    return session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == reference))


def retry_by_hand(session: Session, reference: str, now: datetime) -> OutboxMessage:
    """An operator sends a failed envelope again: a new round of attempts from now."""
    row = find_message(session, reference)
    if row is None:
        raise GreenlaneError(f"no outbox message {reference!r}", code="delivery.not-found")
    if row.state != TrackingState.FAILED_DELIVERY.value:
        raise GreenlaneError(
            f"message {row.message_id} is {row.state}: only FailedDelivery is sent again",
            code="delivery.not-failed",
        )
    row.state = PENDING
    row.attempts = 0
    row.queued_at = row.next_attempt_at = now
    row.claimed_until = None
    session.flush()
    return row


def pending_count(ctx: NodeContext) -> int:
    with ctx.reads() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state == PENDING)
            )
            or 0
        )


def next_due(ctx: NodeContext) -> datetime | None:
    with ctx.reads() as session:
        return session.scalar(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.state == PENDING, OutboxMessage.mode == "push"
            )
        )


class Worker:
    """The push delivery loop: a thread that claims due envelopes and sends them concurrently.

    Woken at once by ``ctx.wake`` when something is submitted, otherwise at the
    next due retry (at most ``idle`` seconds apart, which also picks up leases
    left by a worker that died).
    """

    def __init__(
        self, ctx: NodeContext, *, concurrency: int = 8, batch: int = 64, idle: float = 1.0
    ) -> None:
        self.ctx = ctx
        self.batch = batch
        self.idle = idle
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="greenlane-send")
        self._client = peers.client(ctx)
        self._thread = threading.Thread(target=self._run, name="greenlane-delivery", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.ctx.wake.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def run_once(self) -> list[Outcome]:
        """Claim and send one batch; returns what came of each (for tests and the CLI).

        Envelopes for the same node go in requests of up to ``PER_REQUEST``, several
        requests at once: what is due together travels together.
        """
        ids = claim(self.ctx, self.batch)
        if not ids:
            return []
        with self.ctx.reads() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.receiver_node).where(
                    OutboxMessage.id.in_(ids)
                )
            )
            receivers = {int(r[0]): str(r[1]) for r in rows}
        by_node: dict[str, list[int]] = {}
        for outbox_id in ids:
            by_node.setdefault(receivers.get(outbox_id, ""), []).append(outbox_id)
        chunks = [
            group[i : i + PER_REQUEST]
            for group in by_node.values()
            for i in range(0, len(group), PER_REQUEST)
        ]
        return [outcome for done in self._pool.map(self._send, chunks) for outcome in done]

    def _send(self, outbox_ids: list[int]) -> list[Outcome]:
        try:
            return send_batch(self.ctx, self._client, outbox_ids)
        except Exception as exc:  # a bug must not stop the loop; the lease brings it back
            log.exception("delivery of outbox messages %s crashed", outbox_ids)
            return [Outcome("", TrackingState.PENDING_DELIVERY, repr(exc))]

    def _run(self) -> None:
        expire_every, last_expire = 60.0, 0.0
        while not self.stopping.is_set():
            self.ctx.wake.clear()
            try:
                sent = self.run_once()
                now = self.ctx.clock().timestamp()
                if now - last_expire > expire_every:
                    expire_pull(self.ctx)
                    last_expire = now
                if len(sent) == self.batch:
                    continue  # more may be due right now
                wait = self._until_next_due()
            except Exception:
                log.exception("delivery loop error; retrying in %.1f s", self.idle)
                wait = self.idle
            self.ctx.wake.wait(wait)

    def _until_next_due(self) -> float:
        due = next_due(self.ctx)
        if due is None:
            return self.idle
        return max(0.0, min(self.idle, (due - self.ctx.clock()).total_seconds()))
