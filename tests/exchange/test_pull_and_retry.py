"""Pull delivery; and push delivery that fails, is retried by hand, or is saved by a late receipt.

Real nodes on loopback throughout: AZ's agency API takes the certificate, AZ's
worker or RU's poller moves it, and only a verified receipt from RU makes AZ
say ``Delivered``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from greenlane.corridor.scaffold import Scaffold
from greenlane.errors import GreenlaneError
from greenlane.exchange import delivery, inbound, outbound, peers
from greenlane.exchange.context import NodeContext
from greenlane.exchange.pull import Poller
from greenlane.exchange.tracking import TrackingState
from greenlane.store.models import InboxMessage, OutboxMessage
from greenlane.trust.messages import sign_message
from greenlane.trust.signers import Signer
from tests.cli.run import greenlane
from tests.exchange import harness

WAIT = 15.0
"""Upper bound on any wait here; the states are normally reached in well under a second."""


def signer_of(ctx: NodeContext, owner: str | None = None) -> Signer:
    with ctx.sessions() as session:
        return ctx.signer(session, owner or ctx.node_id)


def outbox(ctx: NodeContext, message_id: str) -> OutboxMessage:
    with ctx.sessions() as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        assert row is not None
        session.expunge(row)
        return row


def inbox_count(ctx: NodeContext) -> int:
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(InboxMessage)) or 0


@dataclass
class Agency:
    """The AZ NPPO's view of a running AZ node: its agency API, with its token."""

    node: harness.RunningNode
    token: str

    def client(self) -> httpx.Client:
        return self.node.client(self.token)

    def submit(self, number: str, lot: int = 0) -> dict[str, Any]:
        with self.client() as client:
            response = client.post(
                "/api/v1/certificates",
                content=harness.certificate_xml(number, lot),
                headers={"Content-Type": "application/xml"},
            )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def tracking(self, certificate_id: int) -> str:
        with self.client() as client:
            response = client.get(f"/api/v1/certificates/{certificate_id}")
        assert response.status_code == 200, response.text
        return str(response.json()["tracking"])

    def metric(self, name: str) -> float:
        with self.client() as client:
            text = client.get("/metrics").text
        found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0


# -- pull ------------------------------------------------------------------------------------


@pytest.fixture
def pull_corridor(tmp_path: Path) -> Iterator[tuple[Scaffold, NodeContext, NodeContext]]:
    """AZ pushes to nobody; RU receives by pulling from AZ (it accepts no inbound connections)."""
    made = harness.scaffold(tmp_path / "corridor", delivery=("push", "pull"))
    az = harness.context(made, "az-node")
    ru = harness.context(made, "ru-node", pull_interval_seconds=0.1)
    yield made, az, ru
    az.engine.dispose()
    ru.engine.dispose()


def test_a_pulling_node_fetches_stores_and_receipts_and_the_sender_shows_delivered(
    pull_corridor: tuple[Scaffold, NodeContext, NodeContext],
) -> None:
    """RU's poller takes AZ's envelope, stores it, posts the receipt; AZ then says Delivered."""
    made, az, ru = pull_corridor
    with harness.serve(az) as az_node:
        agency = Agency(az_node, made.tokens("az-node")["az-fsa"])
        certificate = agency.submit("AZ-PULL-1")
        message_id = certificate["messages"][0]["message_id"]
        assert certificate["messages"][0]["mode"] == "pull"
        assert outbox(az, message_id).state == TrackingState.PENDING_DELIVERY.value
        poller = Poller(ru, interval=0.1).start()
        try:
            harness.wait_for(lambda: agency.tracking(certificate["id"]) == "Delivered", WAIT)
        finally:
            poller.stop()
        row = outbox(az, message_id)
        assert row.delivery_number is not None
        assert row.receipt is not None
        with ru.sessions() as session:
            stored = session.scalar(
                select(InboxMessage).where(InboxMessage.message_id == message_id)
            )
            assert stored is not None
            assert stored.state == "Delivered"
            assert stored.id == row.delivery_number
        # Nothing is pending any more: another round fetches nothing and stores nothing.
        again = Poller(ru)
        try:
            assert again.poll_once() == []
        finally:
            again.stop()
        assert inbox_count(ru) == 1
        assert agency.metric('greenlane_deliveries_total{state="Delivered"}') == 1.0


def signed_get(
    node: harness.RunningNode,
    target: str,
    signer: Signer | None,
    sender: str,
    *,
    signed_target: str | None = None,
) -> httpx.Response:
    headers = {}
    if signer is not None:
        headers[peers.SIGNATURE_HEADER] = sign_message(
            signer,
            sender=sender,
            message_id=str(uuid.uuid4()),
            body=peers.request_body("GET", signed_target or target),
            attempt_at=node.ctx.clock(),
        )
    return httpx.get(node.url + target, headers=headers, timeout=10, trust_env=False)


def test_the_pull_endpoints_answer_only_the_partner_node_signing_that_exact_request(
    pull_corridor: tuple[Scaffold, NodeContext, NodeContext],
) -> None:
    """Listing and fetching need RU's node signature over that very path; all else is refused."""
    made, az, ru = pull_corridor
    with harness.serve(az, background=False) as az_node:
        agency = Agency(az_node, made.tokens("az-node")["az-fsa"])
        message_id = agency.submit("AZ-PULL-2")["messages"][0]["message_id"]
        listing = f"{peers.API}/envelopes?limit=100"
        fetch = f"{peers.API}/envelopes/{message_id}"
        ru_node = signer_of(ru)

        listed = signed_get(az_node, listing, ru_node, "ru-node")
        assert listed.status_code == 200, listed.text
        assert [e["MessageId"] for e in listed.json()["envelopes"]] == [message_id]
        fetched = signed_get(az_node, fetch, ru_node, "ru-node")
        assert fetched.status_code == 200, fetched.text
        assert fetched.content == outbox(az, message_id).envelope

        refusals = [
            (listing, None, "ru-node", None, "message.malformed", 401),
            (fetch, None, "ru-node", None, "message.malformed", 401),
            (listing, signer_of(ru, "ru-rsn"), "ru-node", None, "message.wrong-sender", 401),
            (fetch, signer_of(ru, "ru-rsn"), "ru-rsn", None, "message.wrong-sender", 401),
            (fetch, ru_node, "ru-node", listing, "message.bad-signature", 401),
            (
                f"{peers.API}/envelopes?limit=1",
                ru_node,
                "ru-node",
                listing,
                "message.bad-signature",
                401,
            ),
            (listing, signer_of(az), "az-node", None, "node.not-a-partner", 403),
            (fetch, signer_of(az), "az-node", None, "node.not-a-partner", 403),
        ]
        for target, signer, sender, signed_target, code, status in refusals:
            response = signed_get(az_node, target, signer, sender, signed_target=signed_target)
            assert response.status_code == status, (target, code, response.text)
            assert response.json()["error"]["code"] == code, (target, code)
            assert peers.SIGNATURE_HEADER not in response.headers

        unknown = signed_get(az_node, f"{peers.API}/envelopes/{uuid.uuid4()}", ru_node, "ru-node")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "delivery.not-found"
        assert outbox(az, message_id).state == TrackingState.PENDING_DELIVERY.value


# -- push that fails, and what brings it back ------------------------------------------------


@pytest.fixture
def push_corridor(tmp_path: Path) -> Iterator[tuple[Scaffold, NodeContext, NodeContext]]:
    """Push both ways, with AZ giving up quickly: three attempts, 50 ms backoff."""
    made = harness.scaffold(tmp_path / "corridor")
    az = harness.context(
        made,
        "az-node",
        delivery_max_attempts=3,
        delivery_backoff_seconds=0.05,
        delivery_timeout_seconds=3,
    )
    ru = harness.context(made, "ru-node")
    yield made, az, ru
    az.engine.dispose()
    ru.engine.dispose()


def test_a_delivery_that_fails_alerts_and_an_operator_retry_delivers_it(
    push_corridor: tuple[Scaffold, NodeContext, NodeContext], caplog: pytest.LogCaptureFixture
) -> None:
    """RU down: FailedDelivery, an ALERT, a failure metric; RU up, `deliveries retry`: Delivered."""
    caplog.set_level(logging.WARNING, logger="greenlane.delivery")
    made, az, ru = push_corridor
    with harness.serve(az) as az_node:
        agency = Agency(az_node, made.tokens("az-node")["az-fsa"])
        certificate = agency.submit("AZ-FAIL-1")
        message_id = certificate["messages"][0]["message_id"]
        harness.wait_for(lambda: agency.tracking(certificate["id"]) == "FailedDelivery", WAIT)
        row = outbox(az, message_id)
        assert row.attempts == 3
        assert row.last_error is not None
        assert row.last_error.startswith("transport: ConnectError")
        alerts = [
            r.getMessage()
            for r in caplog.records
            if r.name == "greenlane.delivery" and r.levelno == logging.ERROR
        ]
        assert len(alerts) == 1
        assert alerts[0].startswith(f"ALERT delivery failed: message={message_id}")
        assert agency.metric("greenlane_delivery_failures_total") == 1.0
        assert agency.metric("greenlane_delivery_retries_total") == 2.0

        settings_file = made.nodes["az-node"] / "settings.toml"
        with harness.serve(ru, background=False):
            run = greenlane(
                "deliveries",
                "retry",
                message_id,
                env={"GREENLANE_SETTINGS_FILE": str(settings_file)},
            )
            assert run.status == 0, run.stderr
            assert "PendingDelivery again" in run.stdout
            harness.wait_for(lambda: agency.tracking(certificate["id"]) == "Delivered", WAIT)
        assert inbox_count(ru) == 1
        assert agency.metric("greenlane_delivery_failures_total") == 1.0
        assert agency.metric('greenlane_deliveries_total{state="Delivered"}') == 1.0

        with az.sessions() as session, pytest.raises(GreenlaneError) as refused:
            delivery.retry_by_hand(session, message_id, az.clock())
        assert refused.value.code == "delivery.not-failed"
        assert outbox(az, message_id).state == "Delivered"


def test_a_receipt_that_arrives_after_failed_delivery_still_marks_it_delivered(
    push_corridor: tuple[Scaffold, NodeContext, NodeContext],
) -> None:
    """The envelope got through but its answer was lost: RU's later receipt beats FailedDelivery."""
    made, _, ru = push_corridor
    az = harness.context(made, "az-node", delivery_max_attempts=1)
    with az.sessions() as session, session.begin():
        issued = outbound.submit(
            session, az, agency="az-fsa", raw=harness.certificate_xml("AZ-LATE-1")
        )
        assert issued.message is not None
        outbox_id, message_id = issued.message.id, issued.message.message_id
        envelope = issued.message.envelope
    assert delivery.claim(az) == [outbox_id]
    failed = delivery.failed(az, outbox_id, "transport: ReadTimeout: the answer never came")
    assert failed.state is TrackingState.FAILED_DELIVERY

    # What did arrive at RU, before the answer was lost on the way back:
    token = sign_message(
        signer_of(az), sender="az-node", message_id=message_id, body=envelope, attempt_at=az.clock()
    )
    answer = inbound.receive(ru, envelope, token)
    assert answer.tracking is TrackingState.DELIVERED

    with harness.serve(az, background=False) as az_node:
        posted = httpx.post(
            f"{az_node.url}{peers.API}/envelopes/{message_id}/receipt",
            content=answer.receipt,
            headers={
                peers.SIGNATURE_HEADER: answer.token,
                "Content-Type": peers.RECEIPT_MEDIA_TYPE,
            },
            timeout=10,
            trust_env=False,
        )
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"MessageId": message_id, "HUBTrackingInfo": "Delivered"}
    row = outbox(az, message_id)
    assert row.state == "Delivered"
    assert row.receipt == answer.receipt
    assert row.delivery_number == answer.delivery_number
    az.engine.dispose()
