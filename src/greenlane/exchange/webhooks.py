"""Webhooks: each feed event an agency may see, POSTed to its subscriptions, signed, in order.

A subscription has a cursor, the last event id its URL acknowledged with a
2xx. The worker posts the events after the cursor one at a time, oldest
first, each as ``GET /api/v1/events`` shows it, with

    Greenlane-Webhook-Id: <event id>
    Greenlane-Webhook-Timestamp: <unix seconds>
    Greenlane-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>

and moves the cursor only after a 2xx, so delivery is at least once: an
answer lost on the way means the event is posted again. A failure stops that
subscription's round (later events wait, keeping the order), records
``last_error`` and schedules a retry with the delivery backoff and jitter.

Claims: a round takes a subscription by pushing its ``next_attempt_at`` a lease
ahead (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never post
for one subscription at once and one that dies leaves a lease that runs out.
The worker has its own thread, HTTP client and pool: a slow receiver delays
only its own subscription, never the delivery of envelopes.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import rfc8785
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import greenlane
from greenlane.client import (
    ID_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    TIMESTAMP_HEADER,
    webhook_signature,
)
from greenlane.errors import GreenlaneError
from greenlane.exchange import feed
from greenlane.exchange.context import NodeContext
from greenlane.exchange.delivery import backoff
from greenlane.store.models import FeedEvent, Subscription

log = logging.getLogger("greenlane.webhooks")

ROUND_SECONDS = 30.0
"""A round starts no new post after this long; its lease outlasts it and the last post."""
BATCH = 100
"""Events read per round of one subscription."""
URL_MAX = 500


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; GreenlaneError otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise GreenlaneError(f"not a URL: {exc}", code="subscription.bad-url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise GreenlaneError(
            "a webhook URL must be an absolute http:// or https:// URL with a host",
            code="subscription.bad-url",
        )
    if len(url) > URL_MAX:
        raise GreenlaneError(
            f"a webhook URL is at most {URL_MAX} characters", code="subscription.bad-url"
        )
    return url


def newest_event(session: Session, country: str) -> int:
    return session.scalar(select(func.max(FeedEvent.id)).where(FeedEvent.country == country)) or 0


def subscribe(
    session: Session, ctx: NodeContext, agency_id: str, url: str, after: int | None = None
) -> Subscription:
    """A new subscription with a fresh secret; from ``after``, or from the next event on."""
    now = ctx.clock()
    row = Subscription(
        agency=agency_id,
        url=check_url(url),
        secret=secrets.token_urlsafe(32),
        cursor=newest_event(session, ctx.country) if after is None else after,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def active(session: Session, agency_id: str) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.agency == agency_id, Subscription.disabled_at.is_(None))
            .order_by(Subscription.id)
        )
    )


def unsubscribe(session: Session, agency_id: str, subscription_id: int, now: datetime) -> None:
    """Stop a subscription of this agency; stopping it again changes nothing."""
    row = session.get(Subscription, subscription_id)
    if row is None or row.agency != agency_id:
        raise GreenlaneError(f"no subscription {subscription_id}", code="subscription.not-found")
    if row.disabled_at is None:
        row.disabled_at = now


def view(row: Subscription) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret."""
    return {
        "id": row.id,
        "url": row.url,
        "cursor": row.cursor,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "created_at": row.created_at.isoformat(),
    }


def lease(ctx: NodeContext) -> timedelta:
    """How long a claim holds: a whole round, its last post's timeouts, and a margin."""
    return timedelta(seconds=ROUND_SECONDS + 4 * ctx.settings.delivery_timeout_seconds + 30)


def claim(ctx: NodeContext, limit: int) -> list[int]:
    """Take up to ``limit`` due subscriptions with events past their cursor, for one lease."""
    now = ctx.clock()
    with ctx.sessions() as session, session.begin():
        newest = (
            select(func.max(FeedEvent.id)).where(FeedEvent.country == ctx.country).scalar_subquery()
        )
        query = (
            select(Subscription.id)
            .where(
                Subscription.disabled_at.is_(None),
                Subscription.next_attempt_at <= now,
                Subscription.cursor < newest,
            )
            .order_by(Subscription.next_attempt_at, Subscription.id)
            .limit(limit)
        )
        if not ctx.settings.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(Subscription)
                .where(Subscription.id.in_(ids))
                .values(next_attempt_at=now + lease(ctx))
            )
    return ids


@dataclass(frozen=True, slots=True)
class Round:
    """What one round of a subscription did."""

    subscription_id: int
    posted: list[int]
    """Event ids acknowledged with a 2xx, in order."""
    cursor: int
    error: str | None = None


def post(
    client: httpx.Client, url: str, secret: str, event: dict[str, Any], now: datetime
) -> str | None:
    """POST one event, signed; None on a 2xx, else what went wrong. The answer is not read."""
    body = rfc8785.dumps(event)
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"greenlane/{greenlane.__version__}",
        ID_HEADER: str(event["id"]),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={webhook_signature(secret, timestamp, body)}",
    }
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
    except httpx.HTTPError as exc:
        return f"transport: {type(exc).__name__}: {exc}"[:2000]
    return None if 200 <= status < 300 else f"HTTP {status}"


def run_round(
    ctx: NodeContext,
    client: httpx.Client,
    subscription_id: int,
    stopping: threading.Event | None = None,
) -> Round:
    """Post a claimed subscription's next events until one fails, the batch ends or time is up."""
    with ctx.reads() as session:
        row = session.get(Subscription, subscription_id)
        if row is None or row.disabled_at is not None:
            return Round(subscription_id, [], row.cursor if row else 0)
        agency_id, url, secret, cursor = row.agency, row.url, row.secret, row.cursor
        events, scanned = feed.events(session, ctx.country, agency_id, after=cursor, limit=BATCH)
    posted: list[int] = []
    started = time.monotonic()
    for event in events:
        if time.monotonic() - started > ROUND_SECONDS or (stopping and stopping.is_set()):
            _release(ctx, subscription_id, cursor)
            return Round(subscription_id, posted, cursor)
        error = post(client, url, secret, event, ctx.clock())
        if error is not None:
            _failed(ctx, subscription_id, cursor, error)
            return Round(subscription_id, posted, cursor, error)
        cursor = event["id"]
        posted.append(cursor)
        _advance(ctx, subscription_id, cursor)
    cursor = max(cursor, scanned)  # events this agency may not see are passed over
    _release(ctx, subscription_id, cursor)
    return Round(subscription_id, posted, cursor)


def _advance(ctx: NodeContext, subscription_id: int, cursor: int) -> None:
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.cursor < cursor)
            .values(cursor=cursor, attempts=0, last_error=None)
        )


def _release(ctx: NodeContext, subscription_id: int, cursor: int) -> None:
    """End a round that did not fail: due again at once (the claim skips it if nothing is new)."""
    with ctx.sessions() as session, session.begin():
        row = session.get(Subscription, subscription_id)
        if row is None:
            return
        if row.cursor < cursor:
            row.cursor, row.attempts, row.last_error = cursor, 0, None
        row.next_attempt_at = ctx.clock()


def _failed(ctx: NodeContext, subscription_id: int, cursor: int, error: str) -> None:
    now = ctx.clock()
    with ctx.sessions() as session, session.begin():
        row = session.get(Subscription, subscription_id)
        if row is None:
            return
        row.attempts += 1
        row.last_error = error
        row.next_attempt_at = now + backoff(ctx, row.attempts)
        attempts, url = row.attempts, row.url
    log.warning(
        "webhook %d: attempt %d to post event after %d to %s failed: %s",
        subscription_id,
        attempts,
        cursor,
        url,
        error,
    )


def client(ctx: NodeContext) -> httpx.Client:
    """The webhook HTTP client: no proxies from the environment, no redirects followed."""
    return httpx.Client(
        timeout=httpx.Timeout(ctx.settings.delivery_timeout_seconds),
        trust_env=False,
        follow_redirects=False,
    )


class WebhookWorker:
    """The webhook loop: a thread that claims due subscriptions and runs their rounds in a pool.

    It looks for new events every ``interval`` seconds (default
    ``GREENLANE_WEBHOOK_INTERVAL_SECONDS``); at most ``concurrency`` rounds run
    at once, each for one subscription, so subscriptions wait on no one else.
    """

    def __init__(
        self, ctx: NodeContext, *, concurrency: int = 4, interval: float | None = None
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.interval = ctx.settings.webhook_interval_seconds if interval is None else interval
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="greenlane-webhook")
        self._client = client(ctx)
        self._running: set[Future[Round]] = set()
        self._thread = threading.Thread(target=self._run, name="greenlane-webhooks", daemon=True)

    def start(self) -> WebhookWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def run_once(self) -> list[Round]:
        """Claim the due subscriptions and run their rounds to the end (tests and the CLI)."""
        ids = claim(self.ctx, self.concurrency)
        return list(self._pool.map(self._round, ids))

    def _round(self, subscription_id: int) -> Round:
        try:
            return run_round(self.ctx, self._client, subscription_id, self.stopping)
        except Exception as exc:  # a bug must not stop the loop; the lease brings it back
            log.exception("webhook round of subscription %d crashed", subscription_id)
            return Round(subscription_id, [], 0, repr(exc))

    def _dispatch(self) -> None:
        self._running = {f for f in self._running if not f.done()}
        free = self.concurrency - len(self._running)
        if free > 0:
            for subscription_id in claim(self.ctx, free):
                self._running.add(self._pool.submit(self._round, subscription_id))

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._dispatch()
            except Exception:
                log.exception("webhook loop error; retrying in %.1f s", self.interval)
            self.stopping.wait(self.interval)
