"""Webhooks from a real node to a real receiver on loopback, and their verification."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from greenlane.client import (
    GreenlaneAPIError,
    Subscription,
    WebhookVerificationError,
    verify_webhook,
    webhook_signature,
)
from tests.client.conftest import Nodes
from tests.client.receiver import Received, Receiver
from tests.exchange import harness

WAIT = 10.0


def event_for(receiver: Receiver, kind: str, number: str) -> Received:
    """The first request the receiver acknowledged for a ``kind`` event about ``number``."""

    def found() -> Received | None:
        for request in receiver.requests:
            event = request.event
            certificate = event.get("certificate") or {}
            if request.answered == 200 and (event["kind"], certificate.get("number")) == (
                kind,
                number,
            ):
                return request
        return None

    request: Received = harness.wait_for(found, WAIT)
    return request


def test_subscriptions_are_listed_without_secrets_and_stopped(nodes: Nodes) -> None:
    """The secret is shown once; lists never show it; only http(s) URLs; unsubscribe is final."""
    with nodes.client("ru-rsn") as rsn, nodes.client("ru-fcs") as fcs:
        made = rsn.subscribe("https://rsn.example/hooks")
        assert made.secret is not None
        assert len(made.secret) >= 43
        listed = {s.id: s for s in rsn.subscriptions()}
        assert listed[made.id].url == "https://rsn.example/hooks"
        assert listed[made.id].secret is None
        assert made.id not in {s.id for s in fcs.subscriptions()}
        token = nodes.made.tokens("ru-node")["ru-rsn"]
        raw = httpx.get(
            f"{nodes.ru.url}/api/v1/subscriptions",
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
        )
        assert "secret" not in raw.text

        with pytest.raises(GreenlaneAPIError) as not_theirs:
            fcs.unsubscribe(made.id)
        assert (not_theirs.value.code, not_theirs.value.status) == ("subscription.not-found", 404)
        rsn.unsubscribe(made.id)
        rsn.unsubscribe(made.id)
        assert made.id not in {s.id for s in rsn.subscriptions()}

        for url in ("ftp://rsn.example/hooks", "/hooks", "https://"):
            with pytest.raises(GreenlaneAPIError) as bad:
                rsn.subscribe(url)
            assert (bad.value.code, bad.value.status) == ("subscription.bad-url", 400)


def test_arrival_is_posted_signed_and_verifies(nodes: Nodes) -> None:
    """RU's NPPO gets certificate.received, AZ's gets certificate.delivered; both verify."""
    with (
        Receiver() as at_ru,
        Receiver() as at_az,
        nodes.client("ru-rsn") as rsn,
        nodes.client("az-fsa") as fsa,
    ):
        ru_hook = rsn.subscribe(at_ru.url)
        az_hook = fsa.subscribe(at_az.url)
        try:
            fsa.submit(harness.certificate_xml("AZ-HOOK-0001"))
            arrival = event_for(at_ru, "certificate.received", "AZ-HOOK-0001")
            delivery = event_for(at_az, "certificate.delivered", "AZ-HOOK-0001")
        finally:
            rsn.unsubscribe(ru_hook.id)
            fsa.unsubscribe(az_hook.id)

        assert ru_hook.secret is not None
        assert az_hook.secret is not None
        event = verify_webhook(ru_hook.secret, arrival.headers, arrival.body)
        assert event["kind"] == "certificate.received"
        assert arrival.headers["Greenlane-Webhook-Id"] == str(event["id"])
        polled = rsn.events(after=event["id"] - 1, limit=1).events
        assert [e.data for e in polled] == [event]  # the event as GET /events shows it
        assert arrival.headers["Content-Type"] == "application/json"
        delivered = verify_webhook(az_hook.secret, delivery.headers, delivery.body)
        assert delivered["tracking"] == "Delivered"
        with pytest.raises(WebhookVerificationError):
            verify_webhook(az_hook.secret, arrival.headers, arrival.body)


def test_tampered_forged_or_old_webhooks_are_refused(nodes: Nodes) -> None:
    """A changed body, another secret, an old or changed timestamp or id: each one refused."""
    with Receiver() as receiver, nodes.client("ru-rsn") as rsn, nodes.client("az-fsa") as fsa:
        hook = rsn.subscribe(receiver.url)
        try:
            fsa.submit(harness.certificate_xml("AZ-HOOK-0002"))
            request = event_for(receiver, "certificate.received", "AZ-HOOK-0002")
        finally:
            rsn.unsubscribe(hook.id)
    secret = hook.secret
    assert secret is not None
    headers, body = request.headers, request.body
    sent_at = int(headers["Greenlane-Webhook-Timestamp"])
    assert abs(sent_at - time.time()) < 60
    verify_webhook(secret, headers, body, now=sent_at + 299)

    tampered = body.replace(b"AZ-HOOK-0002", b"AZ-HOOK-0666")
    later = {**headers, "Greenlane-Webhook-Timestamp": str(sent_at + 1)}
    other_id = {**headers, "Greenlane-Webhook-Id": "1"}
    unsigned = {k: v for k, v in headers.items() if k != "Greenlane-Webhook-Signature"}
    refused = [
        (secret, headers, tampered, "signature"),
        ("another-secret", headers, body, "signature"),
        (secret, later, body, "signature"),
        (secret, other_id, body, "Id"),
        (secret, unsigned, body, "no "),
    ]
    for key, sent_headers, sent_body, reason in refused:
        with pytest.raises(WebhookVerificationError, match=reason):
            verify_webhook(key, sent_headers, sent_body)
    with pytest.raises(WebhookVerificationError, match="window"):
        verify_webhook(secret, headers, body, now=sent_at + 301)
    with pytest.raises(WebhookVerificationError, match="window"):
        verify_webhook(secret, headers, body, now=sent_at - 301)


def test_failed_posts_are_retried_in_order_until_acknowledged(nodes: Nodes) -> None:
    """While the receiver answers 500 the first event is retried and the cursor stays; then
    every event is acknowledged once more, in order, and the cursor moves past them."""
    with Receiver(status=500) as receiver, nodes.client("ru-rsn") as rsn:
        hook = rsn.subscribe(receiver.url)
        try:
            with nodes.client("az-fsa") as fsa:
                fsa.submit(harness.certificate_xml("AZ-HOOK-0101"))
                fsa.submit(harness.certificate_xml("AZ-HOOK-0102"))

            def failing() -> Subscription | None:
                found = next(s for s in rsn.subscriptions() if s.id == hook.id)
                return found if found.attempts >= 2 and found.last_error else None

            stuck = harness.wait_for(failing, WAIT)
            assert stuck.last_error == "HTTP 500"
            assert stuck.cursor == hook.cursor
            receiver.status = 200
            event_for(receiver, "certificate.received", "AZ-HOOK-0102")
            caught_up = harness.wait_for(
                lambda: (
                    (s := next(s for s in rsn.subscriptions() if s.id == hook.id)).cursor
                    >= max(r.event["id"] for r in receiver.requests)
                    and s
                ),
                WAIT,
            )
        finally:
            rsn.unsubscribe(hook.id)

    requests = receiver.requests
    failed = [r.event["id"] for r in requests if r.answered == 500]
    acknowledged = [r.event["id"] for r in requests if r.answered == 200]
    assert len(failed) >= 2
    assert set(failed) == {failed[0]}  # the first event, again and again: nothing overtook it
    assert acknowledged[0] == failed[0]
    assert acknowledged == sorted(set(acknowledged))  # in order, each once after the 200s began
    numbers = [r.event["certificate"]["number"] for r in requests if r.answered == 200]
    assert numbers.index("AZ-HOOK-0101") < numbers.index("AZ-HOOK-0102")
    assert caught_up.last_error is None
    assert caught_up.attempts == 0
    assert hook.secret is not None
    for request in requests:
        assert verify_webhook(hook.secret, request.headers, request.body) == request.event


def test_verification_takes_any_listed_v1_signature_and_needs_a_json_object() -> None:
    """A header may list several signatures (a rotation); one match suffices, and the body
    must be a JSON object whose id the id header names."""
    body = json.dumps({"id": 7, "kind": "certificate.received"}).encode()
    stamp = str(int(time.time()))
    good = webhook_signature("s3cret", stamp, body)
    headers = {
        "greenlane-webhook-id": "7",
        "greenlane-webhook-timestamp": stamp,
        "greenlane-webhook-signature": f"v0={good} v1={'0' * 64}, v1={good}",
    }
    assert verify_webhook("s3cret", headers, body.decode())["id"] == 7
    only_other_version = {**headers, "greenlane-webhook-signature": f"v0={good}"}
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook("s3cret", only_other_version, body)
    array = b"[1]"
    array_signature = "v1=" + webhook_signature("k", stamp, array)
    signed = {**headers, "greenlane-webhook-signature": array_signature}
    with pytest.raises(WebhookVerificationError, match="object"):
        verify_webhook("k", signed, array)
    with pytest.raises(WebhookVerificationError, match="unix seconds"):
        verify_webhook("k", {**signed, "greenlane-webhook-timestamp": "soon"}, array)
