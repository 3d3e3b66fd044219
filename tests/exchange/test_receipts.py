"""Receipts prove delivery of exact bytes; tracking states and certificate statuses only advance."""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import rfc8785

from greenlane.codes import CODES, finding
from greenlane.exchange.envelope import (
    ExchangeError,
    document_types,
    encode,
    make_envelope,
    open_envelope,
    sign_attempt,
)
from greenlane.exchange.receipts import (
    MAX_FINDINGS,
    Receipt,
    decode_receipt,
    encode_receipt,
    envelope_digest,
    hub_validation_result,
    make_receipt,
    receipt_for,
    receipt_message_id,
    sign_receipt,
    verify_receipt,
)
from greenlane.exchange.tracking import (
    DELIVERED_STATES,
    FINAL_STATES,
    CertificateStatus,
    StatusMove,
    TrackingState,
    delivery_state,
    may_replace,
    status_move,
    tracking_may_move,
)
from greenlane.findings import Area, Finding, Level
from greenlane.trust.messages import sign_message
from greenlane.trust.signers import TrustError
from tests.trust.keyring import T0, Keyring

PAYLOAD = b"<rsm:SPSCertificate/>"
ENVELOPE_BYTES = b'{"an": "encoded envelope"}'
DIGEST = hashlib.sha256(ENVELOPE_BYTES).hexdigest()
MID = str(uuid.UUID(int=123))
WARNING = Finding(Level.WARNING, Area.RULE, "/rsm:SPSCertificate", "rule.x", "a warning")
ERROR = Finding(Level.ERROR, Area.SCHEMA, "/rsm:SPSCertificate/a", "schema.y", "an error")
INFO = Finding(Level.INFO, Area.CODELIST, "", "codelist.z", "a note")


class Nodes:
    """The two corridor nodes and a third; the AZ node's registry knows them all."""

    def __init__(self) -> None:
        self.az, self.ru = Keyring("AZ"), Keyring("RU")
        self.az_node = self.az.make("az-node")
        self.ru_node = self.ru.make("ru-node")
        self.ru_node_2 = self.ru.make("ru-node-2")
        self.at_az = Keyring("AZ").add(self.az).add(self.ru)
        self.at_ru = Keyring("RU").add(self.ru).add(self.az)


@pytest.fixture(scope="module")
def nodes() -> Nodes:
    return Nodes()


def _receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "message_id": MID,
        "sender_node": "az-node",
        "receiver_node": "ru-node",
        "envelope_sha256": DIGEST,
        "tracking": TrackingState.DELIVERED_WITH_WARNINGS,
        "findings": [WARNING],
        "received_at": T0,
        "delivery_number": 42,
    }
    fields.update(changes)
    return make_receipt(**fields)  # type: ignore[arg-type]


def _verify(
    nodes: Nodes, data: bytes, token: str, *, node: str = "ru-node", digest: str = DIGEST
) -> Receipt:
    return verify_receipt(
        data,
        token,
        keys=nodes.at_az,
        expected_sender_node=node,
        expected_digest=digest,
        recorded_at=T0 + timedelta(seconds=2),
    ).receipt


# -- receipts ------------------------------------------------------------------------------


def test_a_receipt_round_trips_through_its_canonical_bytes() -> None:
    """decode(encode(r)) is r, and the bytes are RFC 8785 canonical JSON with hub names."""
    receipt = _receipt(findings=[INFO, ERROR, WARNING])
    data = encode_receipt(receipt)
    assert decode_receipt(data) == receipt
    assert rfc8785.dumps(json.loads(data)) == data
    document = json.loads(data)
    assert document["HUBTrackingInfo"] == "DeliveredWithWarnings"
    assert document["DeliveryNumber"] == 42
    assert document["Findings"][0] == ERROR.to_dict()
    assert [f["level"] for f in document["Findings"]] == ["error", "warning", "info"]


def test_a_receipt_verifies_under_the_receiving_nodes_key(nodes: Nodes) -> None:
    """The sender accepts a receipt signed by the node it sent to, naming what it sent."""
    receipt = _receipt()
    data = encode_receipt(receipt)
    token = sign_receipt(nodes.ru_node, receipt, data, attempt_at=T0)
    verified = verify_receipt(
        data,
        token,
        keys=nodes.at_az,
        expected_sender_node="ru-node",
        expected_digest=DIGEST,
        recorded_at=T0 + timedelta(seconds=1),
    )
    assert verified.receipt == receipt
    assert verified.message.message_id == f"{MID}:receipt" == receipt_message_id(MID)
    assert verified.message.sender == "ru-node"


def test_the_same_receipt_answers_a_retry_much_later(nodes: Nodes) -> None:
    """The stored receipt bytes, signed afresh, verify after the window of the first answer."""
    receipt = _receipt()
    data = encode_receipt(receipt)
    later = T0 + timedelta(hours=3)
    token = sign_receipt(nodes.ru_node, receipt, data, attempt_at=later)
    verified = verify_receipt(
        data,
        token,
        keys=nodes.at_az,
        expected_sender_node="ru-node",
        expected_digest=DIGEST,
        recorded_at=later,
    )
    assert verified.receipt == receipt


def test_a_receipt_signed_by_another_node_is_refused(nodes: Nodes) -> None:
    """A receipt from RU's second node does not prove delivery to the first."""
    receipt = _receipt(receiver_node="ru-node-2")
    data = encode_receipt(receipt)
    token = sign_receipt(nodes.ru_node_2, receipt, data, attempt_at=T0)
    with pytest.raises(TrustError) as caught:
        _verify(nodes, data, token)
    assert caught.value.code == "message.wrong-sender"


def test_a_receipt_signed_with_a_key_not_the_named_nodes_is_refused(nodes: Nodes) -> None:
    """The second node's key claiming to be the first node is refused by key ownership."""
    receipt = _receipt()
    data = encode_receipt(receipt)
    token = sign_message(
        nodes.ru_node_2,
        sender="ru-node",
        message_id=receipt_message_id(MID),
        body=data,
        attempt_at=T0,
    )
    with pytest.raises(TrustError) as caught:
        _verify(nodes, data, token)
    assert caught.value.code == "message.wrong-sender"


def test_a_receipt_by_an_unknown_key_is_refused(nodes: Nodes) -> None:
    """A key the sender's registry does not hold proves nothing."""
    stranger = Keyring("RU").make("ru-node")
    receipt = _receipt()
    data = encode_receipt(receipt)
    with pytest.raises(TrustError) as caught:
        _verify(nodes, data, sign_receipt(stranger, receipt, data, attempt_at=T0))
    assert caught.value.code == "message.unknown-key"


def test_a_receipt_speaking_for_another_node_is_refused(nodes: Nodes) -> None:
    """The first node may not sign a receipt that says the second node stored it."""
    receipt = _receipt(receiver_node="ru-node-2")
    data = encode_receipt(receipt)
    token = sign_message(
        nodes.ru_node,
        sender="ru-node",
        message_id=receipt_message_id(MID),
        body=data,
        attempt_at=T0,
    )
    with pytest.raises(ExchangeError) as caught:
        _verify(nodes, data, token)
    assert caught.value.code == "receipt.wrong-node"


def test_a_receipt_naming_another_digest_is_refused(nodes: Nodes) -> None:
    """A receipt for other bytes than those sent is not proof of this delivery."""
    receipt = _receipt(envelope_sha256=hashlib.sha256(b"other").hexdigest())
    data = encode_receipt(receipt)
    token = sign_receipt(nodes.ru_node, receipt, data, attempt_at=T0)
    with pytest.raises(ExchangeError) as caught:
        _verify(nodes, data, token)
    assert caught.value.code == "receipt.digest-mismatch"


def test_a_receipt_signed_under_another_message_id_is_refused(nodes: Nodes) -> None:
    """The signature must be the receipt's own (``<mid>:receipt``), not an envelope's."""
    receipt = _receipt()
    data = encode_receipt(receipt)
    token = sign_message(nodes.ru_node, sender="ru-node", message_id=MID, body=data, attempt_at=T0)
    with pytest.raises(ExchangeError) as caught:
        _verify(nodes, data, token)
    assert caught.value.code == "receipt.id-mismatch"


def test_a_receipt_changed_after_signing_is_refused(nodes: Nodes) -> None:
    """Flipping the state from warnings to delivered breaks the signature."""
    receipt = _receipt()
    data = encode_receipt(receipt)
    token = sign_receipt(nodes.ru_node, receipt, data, attempt_at=T0)
    changed = encode_receipt(replace(receipt, tracking=TrackingState.DELIVERED))
    with pytest.raises(TrustError) as caught:
        _verify(nodes, changed, token)
    assert caught.value.code == "message.bad-signature"


def _malformed_receipts() -> list[bytes]:
    document = json.loads(encode_receipt(_receipt()))
    return [
        b"",
        b"{",
        b"[]",
        json.dumps(document).encode(),
        rfc8785.dumps({**document, "Extra": 1}),
        rfc8785.dumps({**document, "Format": "greenlane-receipt/0"}),
        rfc8785.dumps({**document, "HUBTrackingInfo": "PendingDelivery"}),
        rfc8785.dumps({**document, "HUBTrackingInfo": "Received"}),
        rfc8785.dumps({**document, "DeliveryNumber": "42"}),
        rfc8785.dumps({**document, "DeliveryNumber": 0}),
        rfc8785.dumps({**document, "DeliveryNumber": True}),
        rfc8785.dumps({**document, "FindingsOmitted": -1}),
        rfc8785.dumps({**document, "Findings": {}}),
        rfc8785.dumps({**document, "Findings": [{**document["Findings"][0], "level": "fatal"}]}),
        rfc8785.dumps({**document, "Findings": [{**document["Findings"][0], "extra": ""}]}),
        rfc8785.dumps({**document, "MessageId": "m-1"}),
        rfc8785.dumps({**document, "EnvelopeSHA256": "ABC"}),
        rfc8785.dumps({**document, "SenderNode": "AZ"}),
        rfc8785.dumps({**document, "ReceivedAt": "yesterday"}),
    ]


@pytest.mark.parametrize("data", _malformed_receipts())
def test_malformed_receipts_are_refused(data: bytes) -> None:
    """Anything but the canonical bytes of a well-formed receipt is receipt.malformed."""
    with pytest.raises(ExchangeError) as caught:
        decode_receipt(data)
    assert caught.value.code == "receipt.malformed"


def test_a_receipt_can_only_say_delivered() -> None:
    """Pending or failed is the sender's own bookkeeping, never a receiver's signed word."""
    for state in set(TrackingState) - DELIVERED_STATES:
        with pytest.raises(ExchangeError):
            _receipt(tracking=state)


def test_findings_beyond_the_limit_are_counted_errors_first() -> None:
    """A receipt lists the first findings, errors before warnings, and counts the rest."""
    many = [INFO] * MAX_FINDINGS + [ERROR] * 5
    receipt = _receipt(findings=many)
    assert len(receipt.findings) == MAX_FINDINGS
    assert receipt.findings[:5] == (ERROR,) * 5
    assert receipt.findings_omitted == 5
    assert decode_receipt(encode_receipt(receipt)) == receipt


def test_a_receipt_for_an_opened_envelope_names_the_bytes_received(nodes: Nodes) -> None:
    """End to end: AZ sends, RU opens and receipts, AZ verifies against what it sent."""
    envelope = make_envelope(
        from_country="AZ",
        to_country="RU",
        sender_node="az-node",
        receiver_node="ru-node",
        document_type="851",
        document_status="70",
        document_number="AZ-2026-000123",
        payload=PAYLOAD,
        media_type="application/xml",
        created_at=T0,
    )
    sent = encode(envelope, PAYLOAD)
    opened = open_envelope(
        sent,
        sign_attempt(nodes.az_node, envelope, sent, attempt_at=T0),
        keys=nodes.at_ru,
        node_country={"az-node": "AZ", "ru-node": "RU"}.get,
        receiver_node="ru-node",
        recorded_at=T0,
    )
    receipt = receipt_for(
        opened,
        findings=[INFO],
        readable=True,
        received_at=T0 + timedelta(seconds=1),
        delivery_number=1,
    )
    data = encode_receipt(receipt)
    token = sign_receipt(nodes.ru_node, receipt, data, attempt_at=T0 + timedelta(seconds=1))
    got = _verify(nodes, data, token, digest=envelope_digest(sent))
    assert got.tracking is TrackingState.DELIVERED
    assert (got.message_id, got.sender_node, got.receiver_node) == (
        envelope.message_id,
        "az-node",
        "ru-node",
    )


def test_findings_map_to_the_hubs_validation_results() -> None:
    """{level, area, code, path, message} becomes the hub's {area, field, level, msg}."""
    assert hub_validation_result(ERROR) == {
        "area": "Schema",
        "field": "/rsm:SPSCertificate/a",
        "level": "SEVERE",
        "msg": "schema.y: an error",
    }
    assert hub_validation_result(WARNING)["area"] == "MandatoryElements"
    assert hub_validation_result(INFO)["level"] == "INFO"
    assert hub_validation_result(INFO)["area"] == "Mapping"
    for area, level in itertools.product(Area, Level):
        result = hub_validation_result(Finding(level, area, "", "c", "m"))
        assert result["area"] in {"MandatoryElements", "Mapping", "Schema"}
        assert result["level"] in {"SEVERE", "WARNING", "INFO"}


# -- tracking states -----------------------------------------------------------------------


def test_tracking_states_are_spelled_as_the_hub_spells_them() -> None:
    """The values are the WSDL's HUBTrackingInfo enumeration, and only PendingDelivery is open."""
    assert {s.value for s in TrackingState} == {
        "PendingDelivery",
        "Delivered",
        "DeliveredWithWarnings",
        "DeliveredNotReadable",
        "FailedDelivery",
        "EnvelopeNotExists",
    }
    assert set(TrackingState) - FINAL_STATES == {TrackingState.PENDING_DELIVERY}


P, D, W, N, F, X = (
    TrackingState.PENDING_DELIVERY,
    TrackingState.DELIVERED,
    TrackingState.DELIVERED_WITH_WARNINGS,
    TrackingState.DELIVERED_NOT_READABLE,
    TrackingState.FAILED_DELIVERY,
    TrackingState.ENVELOPE_NOT_EXISTS,
)
TRACKING_MOVES = {
    P: {P, D, W, N, F},
    D: {D},
    W: {W},
    N: {N},
    F: {F, D, W, N},
    X: {X},
}


@pytest.mark.parametrize(("stored", "new"), list(itertools.product(TrackingState, repeat=2)))
def test_tracking_moves_only_forward(stored: TrackingState, new: TrackingState) -> None:
    """Every pair: pending moves anywhere, a failure yields to a receipt, delivered stays."""
    assert tracking_may_move(stored, new) is (new in TRACKING_MOVES[stored])


@pytest.mark.parametrize(
    ("findings", "readable", "state"),
    [
        ([], True, D),
        ([INFO], True, D),
        ([INFO, WARNING], True, W),
        ([ERROR], True, W),
        ([], False, N),
        ([ERROR], False, N),
    ],
)
def test_validation_decides_how_a_delivery_is_acknowledged_never_whether(
    findings: list[Finding], readable: bool, state: TrackingState
) -> None:
    """Failed checks still give a delivered state, with warnings or not readable."""
    assert delivery_state(findings, readable=readable) is state


def test_findings_made_by_the_registry_drive_the_state() -> None:
    """A real registered code's level decides the state like a hand-made finding."""
    code = next(c for c, e in CODES.items() if e.level is Level.ERROR)
    assert delivery_state([finding(code, "m", "")], readable=True) is W


# -- certificate statuses ------------------------------------------------------------------

A, ISS, WD, R, S = (
    CertificateStatus.APPROVED,
    CertificateStatus.ISSUED,
    CertificateStatus.WITHDRAWN,
    CertificateStatus.REJECTED,
    CertificateStatus.SUPERSEDED,
)
_APPLY, _SAME, _STALE = StatusMove.APPLY, StatusMove.SAME, StatusMove.STALE
STATUS_MOVES: dict[CertificateStatus | None, dict[CertificateStatus, StatusMove]] = {
    None: {A: _APPLY, ISS: _APPLY, WD: _APPLY, R: _APPLY, S: _APPLY},
    A: {A: _SAME, ISS: _APPLY, WD: _APPLY, R: _APPLY, S: _APPLY},
    ISS: {A: _STALE, ISS: _SAME, WD: _APPLY, R: _APPLY, S: _APPLY},
    WD: {A: _STALE, ISS: _STALE, WD: _SAME, R: _STALE, S: _STALE},
    R: {A: _STALE, ISS: _STALE, WD: _STALE, R: _SAME, S: _STALE},
    S: {A: _STALE, ISS: _STALE, WD: _STALE, R: _STALE, S: _SAME},
}


@pytest.mark.parametrize(
    ("stored", "new"), list(itertools.product([None, *CertificateStatus], CertificateStatus))
)
def test_certificate_statuses_only_move_forward(
    stored: CertificateStatus | None, new: CertificateStatus
) -> None:
    """Every pair: issue after approval, then one terminal status that nothing later undoes."""
    assert status_move(stored, new) is STATUS_MOVES[stored][new]
    assert may_replace(stored, new) is (STATUS_MOVES[stored][new] is StatusMove.APPLY)


def test_a_late_issue_never_overwrites_a_withdrawal() -> None:
    """The story's case by name: 70 arriving after 40 is stale, kept as withdrawn."""
    assert CertificateStatus("70") is ISS
    assert CertificateStatus("40") is WD
    assert not may_replace(CertificateStatus("40"), CertificateStatus("70"))
    assert may_replace(CertificateStatus("70"), CertificateStatus("40"))


def test_envelope_statuses_name_certificate_statuses() -> None:
    """Each SPS status an envelope may carry is a certificate status the order ranks."""
    for code in document_types()["851"].statuses:
        assert CertificateStatus(code).rank >= 0


def test_times_in_receipts_are_utc_instants() -> None:
    """A receipt made with a local time keeps the instant and writes it in UTC."""
    baku = datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=4)))
    receipt = _receipt(received_at=baku)
    assert json.loads(encode_receipt(receipt))["ReceivedAt"] == "2026-12-01T08:00:00.000000Z"
