"""The node-to-node API of a running RU node: what it refuses, quarantines and deduplicates.

AZ's side is played by hand, with AZ's real keys: each test builds an envelope
with :func:`make_envelope`, signs an attempt with the AZ node's signer (or the
wrong key on purpose) and POSTs it to RU over loopback. Refusals must leave
RU's tables exactly as they were; payload failures must be stored in
quarantine and receipted.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from greenlane.exchange import peers
from greenlane.exchange.context import NodeContext
from greenlane.exchange.envelope import Envelope, encode, make_envelope, sign_attempt
from greenlane.exchange.receipts import VerifiedReceipt, verify_receipt
from greenlane.exchange.tracking import TrackingState
from greenlane.store.models import (
    Certificate,
    EvidenceEntry,
    InboxMessage,
    SeenMessage,
    StoredDocument,
)
from greenlane.trust import pki
from greenlane.trust.keys import OwnerKind, key_id
from greenlane.trust.messages import sign_message
from greenlane.trust.registry import DatabaseKeys
from greenlane.trust.signers import Signer, SoftwareSigner
from greenlane.trust.xmldsig import sign_enveloped
from tests.exchange import harness

MAX_ENVELOPE = 64 * 1024
"""RU's envelope ceiling here: a signed certificate's envelope (about 9 kB) fits."""
ROWS = (StoredDocument, InboxMessage, SeenMessage, Certificate, EvidenceEntry)


@dataclass
class Corridor:
    az: NodeContext
    ru: NodeContext
    ru_url: str
    ru_tokens: dict[str, str]


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corridor]:
    """A scaffolded corridor with RU serving on loopback (no background loops) and AZ in hand."""
    made = harness.scaffold(tmp_path_factory.mktemp("node-api") / "corridor")
    az = harness.context(made, "az-node")
    ru = harness.context(made, "ru-node", envelope_max_bytes=MAX_ENVELOPE)
    with harness.serve(ru, background=False) as running:
        yield Corridor(az, ru, running.url, made.tokens("ru-node"))
    az.engine.dispose()
    ru.engine.dispose()


# -- building what AZ sends ------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    envelope: Envelope
    encoded: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.encoded).hexdigest()


def node_signer(ctx: NodeContext, owner: str | None = None) -> Signer:
    with ctx.sessions() as session:
        return ctx.signer(session, owner or ctx.node_id)


def signed_certificate(az: NodeContext, number: str, lot: int = 0) -> bytes:
    """A certificate as AZ sends it: signed by the AZ NPPO (az-fsa) with its registered key."""
    return sign_enveloped(harness.certificate_xml(number, lot), node_signer(az, "az-fsa"))


def outgoing(
    az: NodeContext,
    payload: bytes,
    number: str,
    *,
    message_id: str | None = None,
    receiver: tuple[str, str] = ("ru-node", "RU"),
) -> Outgoing:
    envelope = make_envelope(
        from_country="AZ",
        to_country=receiver[1],
        sender_node="az-node",
        receiver_node=receiver[0],
        document_type="851",
        document_status="70",
        document_number=number,
        payload=payload,
        media_type="application/xml",
        created_at=az.clock(),
        message_id=message_id,
        types=az.types,
    )
    return Outgoing(envelope, encode(envelope, payload))


def attempt(az: NodeContext, sent: Outgoing, signer: Signer | None = None) -> str:
    """A fresh signature of one sending attempt, by the AZ node unless another signer is given."""
    return sign_attempt(
        signer or node_signer(az), sent.envelope, sent.encoded, attempt_at=az.clock()
    )


def post(corridor: Corridor, body: bytes, token: str | None) -> httpx.Response:
    headers = {"Content-Type": peers.ENVELOPE_MEDIA_TYPE}
    if token is not None:
        headers[peers.SIGNATURE_HEADER] = token
    return httpx.post(
        f"{corridor.ru_url}{peers.API}/envelopes",
        content=body,
        headers=headers,
        timeout=10,
        trust_env=False,
    )


def receipt_at_az(corridor: Corridor, response: httpx.Response, sent: Outgoing) -> VerifiedReceipt:
    """The receipt as AZ checks it: RU's signature, over the digest of exactly what was sent."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == peers.RECEIPT_MEDIA_TYPE
    with corridor.az.sessions() as session:
        return verify_receipt(
            response.content,
            response.headers[peers.SIGNATURE_HEADER],
            keys=DatabaseKeys(session),
            expected_sender_node="ru-node",
            expected_digest=sent.digest,
            recorded_at=corridor.az.clock(),
        )


def rows(ctx: NodeContext) -> dict[str, int]:
    with ctx.sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in ROWS
        }


def inbox_row(ctx: NodeContext, message_id: str) -> InboxMessage:
    with ctx.sessions() as session:
        row = session.scalar(select(InboxMessage).where(InboxMessage.message_id == message_id))
        assert row is not None
        session.expunge(row)
        return row


def document_findings(ctx: NodeContext, document_id: int) -> list[str]:
    with ctx.sessions() as session:
        document = session.get(StoredDocument, document_id)
        assert document is not None
        return [f.code for f in document.findings]


def assert_refused(
    response: httpx.Response,
    code: str,
    status: int,
    caplog: pytest.LogCaptureFixture,
    corridor: Corridor,
    before: dict[str, int],
) -> None:
    """Refused with ``code`` in the one error shape, a security log line, and nothing stored."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert peers.SIGNATURE_HEADER not in response.headers
    lines = [r.getMessage() for r in caplog.records if r.name == "greenlane.security"]
    assert any(f"code={code}" in line for line in lines), lines
    assert rows(corridor.ru) == before


def outsider_signer(node: str = "az-node") -> SoftwareSigner:
    """A key whose certificate names the AZ node, issued by a root nobody registered."""
    root_key = pki.generate_key()
    root = pki.create_root("AZ", "not the AZ corridor root", root_key)
    key = pki.generate_key()
    owner = pki.Owner("AZ", OwnerKind.NODE, node, node)
    return SoftwareSigner.from_key(key, pki.issue(root_key, root, key.public_key(), owner))


# -- envelope refusals -----------------------------------------------------------------------


def _unknown_key(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    return sent.encoded, attempt(corridor.az, sent, outsider_signer())


def _other_bytes(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    other = outgoing(corridor.az, b"<other/>", sent.envelope.document_number)
    return sent.encoded, attempt(corridor.az, other)


def _agency_key(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    return sent.encoded, attempt(corridor.az, sent, node_signer(corridor.az, "az-fsa"))


def _ru_key(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    return sent.encoded, attempt(corridor.az, sent, node_signer(corridor.ru))


def _malformed_json(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    body = sent.encoded[: len(sent.encoded) // 2]
    token = sign_message(
        node_signer(corridor.az),
        sender="az-node",
        message_id=sent.envelope.message_id,
        body=body,
        attempt_at=corridor.az.clock(),
    )
    return body, token


def _not_canonical(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    body = sent.encoded.replace(b'{"Format"', b'{ "Format"', 1)
    token = sign_message(
        node_signer(corridor.az),
        sender="az-node",
        message_id=sent.envelope.message_id,
        body=body,
        attempt_at=corridor.az.clock(),
    )
    return body, token


def _wrong_receiver(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    payload = signed_certificate(corridor.az, sent.envelope.document_number)
    to_az = outgoing(
        corridor.az, payload, sent.envelope.document_number, receiver=("az-node", "AZ")
    )
    return to_az.encoded, attempt(corridor.az, to_az)


def _stale_attempt(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    at = corridor.az.clock() - timedelta(minutes=30)
    return sent.encoded, sign_attempt(
        node_signer(corridor.az), sent.envelope, sent.encoded, attempt_at=at
    )


def _unsigned(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    return sent.encoded, None


def _garbage_signature(corridor: Corridor, sent: Outgoing) -> tuple[bytes, str | None]:
    return sent.encoded, "not-a-jws"


REFUSALS = {
    "unknown sender key": (_unknown_key, "message.unknown-key", 401),
    "signature over other bytes": (_other_bytes, "message.bad-signature", 401),
    "AZ agency key as the node signer": (_agency_key, "message.wrong-sender", 401),
    "RU's own node key claiming AZ": (_ru_key, "message.wrong-sender", 401),
    "malformed envelope JSON": (_malformed_json, "envelope.malformed", 400),
    "envelope not in canonical form": (_not_canonical, "envelope.malformed", 400),
    "wrong receiver node": (_wrong_receiver, "envelope.wrong-receiver", 400),
    "attempt outside the time window": (_stale_attempt, "message.time-window", 401),
    "no signature at all": (_unsigned, "message.malformed", 401),
    "unreadable signature": (_garbage_signature, "message.malformed", 401),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_envelope_that_fails_its_checks_is_refused_and_leaves_nothing(
    case: str, corridor: Corridor, caplog: pytest.LogCaptureFixture
) -> None:
    """Each envelope-level failure gets its code, the error shape, a security log line, no rows."""
    caplog.set_level(logging.WARNING, logger="greenlane.security")
    build, code, status = REFUSALS[case]
    number = f"AZ-REF-{uuid.uuid4().hex[:8]}"
    sent = outgoing(corridor.az, signed_certificate(corridor.az, number), number)
    body, token = build(corridor, sent)
    before = rows(corridor.ru)
    assert_refused(post(corridor, body, token), code, status, caplog, corridor, before)
    # The same envelope, properly signed, is then accepted: the refusal left no trace in the way.
    if body == sent.encoded:
        assert receipt_at_az(
            corridor, post(corridor, sent.encoded, attempt(corridor.az, sent)), sent
        )


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_envelope_is_refused_before_it_is_read(
    declared: bool, corridor: Corridor, caplog: pytest.LogCaptureFixture
) -> None:
    """A body over envelope_max_bytes is refused as envelope.too-large, declared or streamed."""
    caplog.set_level(logging.WARNING, logger="greenlane.security")
    payload = b"<big>" + b"x" * (MAX_ENVELOPE * 2) + b"</big>"
    sent = outgoing(corridor.az, payload, "AZ-BIG-1")
    token = attempt(corridor.az, sent)
    before = rows(corridor.ru)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(sent.encoded), 16 * 1024):
            yield sent.encoded[start : start + 16 * 1024]

    response = httpx.post(
        f"{corridor.ru_url}{peers.API}/envelopes",
        content=sent.encoded if declared else chunks(),
        headers={peers.SIGNATURE_HEADER: token, "Content-Type": peers.ENVELOPE_MEDIA_TYPE},
        timeout=10,
        trust_env=False,
    )
    assert_refused(response, "envelope.too-large", 413, caplog, corridor, before)


def test_the_same_attempt_twice_is_a_replay_and_a_fresh_attempt_gets_the_original_receipt(
    corridor: Corridor, caplog: pytest.LogCaptureFixture
) -> None:
    """A replayed signature is refused; a retry signed afresh gets the stored receipt back."""
    caplog.set_level(logging.WARNING, logger="greenlane.security")
    sent = outgoing(corridor.az, signed_certificate(corridor.az, "AZ-REPLAY-1"), "AZ-REPLAY-1")
    token = attempt(corridor.az, sent)
    first = post(corridor, sent.encoded, token)
    assert receipt_at_az(corridor, first, sent).receipt.tracking is TrackingState.DELIVERED
    before = rows(corridor.ru)

    replay = post(corridor, sent.encoded, token)
    assert_refused(replay, "message.replayed", 401, caplog, corridor, before)

    retry = post(corridor, sent.encoded, attempt(corridor.az, sent))
    assert receipt_at_az(corridor, retry, sent)
    assert retry.content == first.content
    assert rows(corridor.ru) == before


def test_a_message_id_reused_for_other_content_is_refused(
    corridor: Corridor, caplog: pytest.LogCaptureFixture
) -> None:
    """Other bytes under a message id RU has already stored are refused as message.id-reused."""
    caplog.set_level(logging.WARNING, logger="greenlane.security")
    sent = outgoing(corridor.az, signed_certificate(corridor.az, "AZ-REUSE-1"), "AZ-REUSE-1")
    assert receipt_at_az(corridor, post(corridor, sent.encoded, attempt(corridor.az, sent)), sent)
    before = rows(corridor.ru)
    other = outgoing(
        corridor.az,
        signed_certificate(corridor.az, "AZ-REUSE-2"),
        "AZ-REUSE-2",
        message_id=sent.envelope.message_id,
    )
    response = post(corridor, other.encoded, attempt(corridor.az, other))
    assert_refused(response, "message.id-reused", 401, caplog, corridor, before)
    assert inbox_row(corridor.ru, sent.envelope.message_id).document_number == "AZ-REUSE-1"


# -- payload failures from an authenticated partner ------------------------------------------


def quarantined_arrival(corridor: Corridor, delivery_number: int) -> dict[str, Any]:
    """The arrival as the RU NPPO sees it in /api/v1/arrivals?quarantined=true."""
    response = httpx.get(
        f"{corridor.ru_url}/api/v1/arrivals",
        params={"quarantined": "true", "after": delivery_number - 1, "limit": 1},
        headers={"Authorization": f"Bearer {corridor.ru_tokens['ru-rsn']}"},
        timeout=10,
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    arrivals = response.json()["arrivals"]
    assert [a["delivery_number"] for a in arrivals] == [delivery_number]
    arrival: dict[str, Any] = arrivals[0]
    return arrival


def test_an_unreadable_payload_is_quarantined_and_receipted_not_readable(
    corridor: Corridor,
) -> None:
    """Bytes that are not XML are kept in quarantine with findings and receipted NotReadable."""
    sent = outgoing(corridor.az, b"this is not a certificate", "AZ-UNREAD-1")
    verified = receipt_at_az(
        corridor, post(corridor, sent.encoded, attempt(corridor.az, sent)), sent
    )
    receipt = verified.receipt
    assert receipt.tracking is TrackingState.DELIVERED_NOT_READABLE
    assert receipt.findings
    row = inbox_row(corridor.ru, sent.envelope.message_id)
    assert row.quarantined
    assert row.certificate_id is None
    assert row.state == TrackingState.DELIVERED_NOT_READABLE.value
    codes = document_findings(corridor.ru, row.document_id)
    assert codes == [f.code for f in receipt.findings]
    arrival = quarantined_arrival(corridor, row.id)
    assert arrival["tracking"] == "DeliveredNotReadable"
    assert [f["code"] for f in arrival["findings"]] == codes


def _unregistered(corridor: Corridor, raw: bytes) -> bytes:
    return sign_enveloped(raw, outsider_signer("az-fsa"))


def _altered_after_signing(corridor: Corridor, raw: bytes) -> bytes:
    signed = sign_enveloped(raw, node_signer(corridor.az, "az-fsa"))
    assert signed.count(b"Aysel Mammadova") == 1
    return signed.replace(b"Aysel Mammadova", b"Aysel Mammadovb")


UNTRUSTED = {
    "signed by an unregistered key": (_unregistered, ["policy.unknown-key"]),
    "altered after signing": (
        _altered_after_signing,
        ["signature.digest-mismatch", "policy.not-intact"],
    ),
}


@pytest.mark.parametrize("case", list(UNTRUSTED))
def test_a_certificate_whose_signature_does_not_hold_is_quarantined_with_warnings(
    case: str, corridor: Corridor
) -> None:
    """An untrusted or broken XML signature: stored in quarantine, receipted WithWarnings."""
    make, codes = UNTRUSTED[case]
    number = f"AZ-SIG-{uuid.uuid4().hex[:8]}"
    sent = outgoing(corridor.az, make(corridor, harness.certificate_xml(number)), number)
    receipt = receipt_at_az(
        corridor, post(corridor, sent.encoded, attempt(corridor.az, sent)), sent
    ).receipt
    assert receipt.tracking is TrackingState.DELIVERED_WITH_WARNINGS
    assert [f.code for f in receipt.findings] == codes
    row = inbox_row(corridor.ru, sent.envelope.message_id)
    assert row.quarantined
    assert row.certificate_id is None
    assert document_findings(corridor.ru, row.document_id) == codes
    arrival = quarantined_arrival(corridor, row.id)
    assert [f["code"] for f in arrival["findings"]] == codes


def test_an_envelope_header_that_differs_from_its_document_is_quarantined(
    corridor: Corridor,
) -> None:
    """An envelope number other than the document's: exchange.header-mismatch, quarantined."""
    payload = signed_certificate(corridor.az, "AZ-HDR-1")
    sent = outgoing(corridor.az, payload, "AZ-HDR-OTHER")
    receipt = receipt_at_az(
        corridor, post(corridor, sent.encoded, attempt(corridor.az, sent)), sent
    ).receipt
    assert receipt.tracking is TrackingState.DELIVERED_WITH_WARNINGS
    assert [f.code for f in receipt.findings] == ["exchange.header-mismatch"]
    row = inbox_row(corridor.ru, sent.envelope.message_id)
    assert row.quarantined
    assert row.certificate_id is None
    assert "exchange.header-mismatch" in document_findings(corridor.ru, row.document_id)


# -- duplicates ------------------------------------------------------------------------------


def test_a_resent_envelope_gets_byte_identical_receipts_and_changes_nothing(
    corridor: Corridor,
) -> None:
    """Three retries of one message: one stored copy, the same receipt bytes, each signed afresh."""
    sent = outgoing(corridor.az, signed_certificate(corridor.az, "AZ-DUP-1"), "AZ-DUP-1")
    first = post(corridor, sent.encoded, attempt(corridor.az, sent))
    assert receipt_at_az(corridor, first, sent).receipt.tracking is TrackingState.DELIVERED
    before = rows(corridor.ru)
    tokens = {first.headers[peers.SIGNATURE_HEADER]}
    for _ in range(3):
        again = post(corridor, sent.encoded, attempt(corridor.az, sent))
        assert receipt_at_az(corridor, again, sent)
        assert again.content == first.content
        tokens.add(again.headers[peers.SIGNATURE_HEADER])
    assert len(tokens) == 4
    assert rows(corridor.ru) == before


def test_the_same_number_with_other_content_is_kept_and_flagged(corridor: Corridor) -> None:
    """A second certificate under a number already received: stored, flagged duplicate-number."""
    number = "AZ-TWICE-1"
    one = outgoing(corridor.az, signed_certificate(corridor.az, number, lot=0), number)
    two = outgoing(corridor.az, signed_certificate(corridor.az, number, lot=1), number)
    first = receipt_at_az(corridor, post(corridor, one.encoded, attempt(corridor.az, one)), one)
    assert first.receipt.tracking is TrackingState.DELIVERED
    before = rows(corridor.ru)
    second = receipt_at_az(corridor, post(corridor, two.encoded, attempt(corridor.az, two)), two)
    assert second.receipt.tracking is TrackingState.DELIVERED_WITH_WARNINGS
    assert [f.code for f in second.receipt.findings] == ["exchange.duplicate-number"]
    after = rows(corridor.ru)
    assert after["documents"] == before["documents"] + 1
    assert after["inbox"] == before["inbox"] + 1
    kept = [inbox_row(corridor.ru, s.envelope.message_id) for s in (one, two)]
    assert [(r.duplicate_number, r.quarantined) for r in kept] == [(False, False), (True, False)]
    assert kept[0].document_id != kept[1].document_id


# -- tracking --------------------------------------------------------------------------------


def tracking(corridor: Corridor, message_id: str, signer: Signer, sender: str) -> httpx.Response:
    target = f"{peers.API}/envelopes/{message_id}/tracking"
    token = sign_message(
        signer,
        sender=sender,
        message_id=str(uuid.uuid4()),
        body=peers.request_body("GET", target),
        attempt_at=corridor.az.clock(),
    )
    return httpx.get(
        corridor.ru_url + target,
        headers={peers.SIGNATURE_HEADER: token},
        timeout=10,
        trust_env=False,
    )


def test_tracking_names_the_state_of_a_known_envelope_and_envelope_not_exists_otherwise(
    corridor: Corridor,
) -> None:
    """AZ asks RU where its envelope stands; an unknown id is EnvelopeNotExists, not an error."""
    sent = outgoing(corridor.az, signed_certificate(corridor.az, "AZ-TRACK-1"), "AZ-TRACK-1")
    receipt = receipt_at_az(
        corridor, post(corridor, sent.encoded, attempt(corridor.az, sent)), sent
    ).receipt
    signer = node_signer(corridor.az)
    known = tracking(corridor, sent.envelope.message_id, signer, "az-node")
    assert known.status_code == 200, known.text
    assert known.json() == {
        "MessageId": sent.envelope.message_id,
        "HUBTrackingInfo": "Delivered",
        "hubDeliveryNumber": receipt.delivery_number,
    }
    unknown_id = str(uuid.uuid4())
    unknown = tracking(corridor, unknown_id, signer, "az-node")
    assert unknown.json() == {"MessageId": unknown_id, "HUBTrackingInfo": "EnvelopeNotExists"}


def test_tracking_refuses_a_caller_that_is_not_a_partner_node(corridor: Corridor) -> None:
    """RU's own node key and AZ's agency key cannot ask RU about envelopes."""
    own = tracking(corridor, str(uuid.uuid4()), node_signer(corridor.ru), "ru-node")
    assert own.status_code == 403
    assert own.json()["error"]["code"] == "node.not-a-partner"
    agency = tracking(corridor, str(uuid.uuid4()), node_signer(corridor.az, "az-fsa"), "az-fsa")
    assert agency.status_code == 401
    assert agency.json()["error"]["code"] == "message.wrong-sender"


def test_the_keys_these_tests_use_are_what_they_claim(corridor: Corridor) -> None:
    """The outsider key is unknown to RU, and AZ's agency key is registered there as az-fsa's."""
    with corridor.ru.sessions() as session:
        keys = DatabaseKeys(session)
        outsider = keys.key(key_id(outsider_signer().certificate))
        agency = keys.key(key_id(node_signer(corridor.az, "az-fsa").certificate))
    assert outsider is None
    assert agency is not None
    assert agency.owner == "az-fsa"
    assert agency.owner_kind is OwnerKind.AGENCY
