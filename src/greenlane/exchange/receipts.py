"""Receipts: the receiver's signed word that it has stored exactly these bytes.

The receiving node returns a receipt only after its own commit, so a sender
that holds a receipt knows the envelope survives a crash at the other end; a
sender without one sends again, and the receiver answers every retry with the
same receipt bytes (signed afresh for each answer, so the freshness window
holds). On the wire a receipt is RFC 8785 canonical JSON::

    {"Format": "greenlane-receipt/1", "MessageId": "...", "SenderNode": "az-node",
     "ReceiverNode": "ru-node", "EnvelopeSHA256": "<hex>",
     "HUBTrackingInfo": "DeliveredWithWarnings", "DeliveryNumber": 42,
     "Findings": [{"level": ..., "area": ..., "code": ..., "path": ..., "message": ...}],
     "FindingsOmitted": 0, "ReceivedAt": "2026-12-01T08:00:00.000000Z"}

with a detached JWS beside it (:func:`greenlane.trust.messages.sign_message`)
by the receiving node's key, whose message id is the envelope's message id
followed by ``:receipt``: a receipt is a message of its own, with an id that
never collides with an envelope's and says which envelope it answers.

``EnvelopeSHA256`` is the SHA-256 of the encoded envelope bytes as received,
not of the payload: it proves the receiver got the header too, and it is what
the sender's outbox keeps for each message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import rfc8785

from greenlane.exchange.envelope import (
    NODE_ID,
    SHA256_HEX,
    ExchangeError,
    OpenedEnvelope,
    format_time,
    is_uuid,
    load_json,
    parse_time,
)
from greenlane.exchange.tracking import DELIVERED_STATES, TrackingState, delivery_state
from greenlane.findings import Area, Finding, Level
from greenlane.trust.keys import KeyLookup
from greenlane.trust.messages import DEFAULT_WINDOW, VerifiedMessage, sign_message, verify_message
from greenlane.trust.signers import Signer

FORMAT: Final = "greenlane-receipt/1"
MAX_FINDINGS: Final = 100
"""Findings kept in a receipt, errors first; the rest are counted, not listed."""
MAX_RECEIPT_BYTES: Final = 1024 * 1024
MAX_DELIVERY_NUMBER: Final = 2**53 - 1
"""The largest integer RFC 8785 (I-JSON) carries exactly."""

_KEYS: Final = frozenset(
    {
        "Format",
        "MessageId",
        "SenderNode",
        "ReceiverNode",
        "EnvelopeSHA256",
        "HUBTrackingInfo",
        "DeliveryNumber",
        "Findings",
        "FindingsOmitted",
        "ReceivedAt",
    }
)
_FINDING_KEYS: Final = frozenset({"level", "area", "code", "path", "message"})
_LEVEL_ORDER: Final = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def receipt_message_id(message_id: str) -> str:
    """The message id a receipt is signed under: the envelope's, then ``:receipt``."""
    return f"{message_id}:receipt"


def _malformed(message: str) -> ExchangeError:
    return ExchangeError(message, code="receipt.malformed")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the receiving node says it stored, and how it judged it."""

    message_id: str
    sender_node: str
    """The node that sent the envelope."""
    receiver_node: str
    """The node that stored it and signs this receipt."""
    envelope_sha256: str
    """SHA-256 (hex) of the encoded envelope bytes exactly as received."""
    tracking: TrackingState
    """Delivered, DeliveredWithWarnings or DeliveredNotReadable."""
    delivery_number: int
    """The receiver's own sequence number for what it received (the hub's
    ``hubDeliveryNumber``)."""
    findings: tuple[Finding, ...]
    findings_omitted: int
    """How many findings beyond :data:`MAX_FINDINGS` were left out."""
    received_at: datetime
    """When the receiver committed the envelope, UTC."""

    def __post_init__(self) -> None:
        if not is_uuid(self.message_id):
            raise _malformed(f"message id {self.message_id!r} is not a canonical UUID")
        for node in (self.sender_node, self.receiver_node):
            if not NODE_ID.fullmatch(node):
                raise _malformed(f"node id {node!r} is malformed")
        if not SHA256_HEX.fullmatch(self.envelope_sha256):
            raise _malformed(f"envelope digest {self.envelope_sha256!r} is not SHA-256 hex")
        if self.tracking not in DELIVERED_STATES:
            raise _malformed(f"a receipt cannot say {self.tracking}: only a delivered state")
        if not 0 < self.delivery_number <= MAX_DELIVERY_NUMBER:
            raise _malformed(f"delivery number {self.delivery_number} is out of range")
        if not 0 <= self.findings_omitted <= MAX_DELIVERY_NUMBER:
            raise _malformed(f"findings omitted {self.findings_omitted} is out of range")
        if len(self.findings) > MAX_FINDINGS:
            raise _malformed(f"a receipt lists at most {MAX_FINDINGS} findings")
        if self.received_at.tzinfo is None:
            raise _malformed("received_at must be a zoned time")
        if self.received_at.tzinfo is not UTC:
            object.__setattr__(self, "received_at", self.received_at.astimezone(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "Format": FORMAT,
            "MessageId": self.message_id,
            "SenderNode": self.sender_node,
            "ReceiverNode": self.receiver_node,
            "EnvelopeSHA256": self.envelope_sha256,
            "HUBTrackingInfo": self.tracking.value,
            "DeliveryNumber": self.delivery_number,
            "Findings": [f.to_dict() for f in self.findings],
            "FindingsOmitted": self.findings_omitted,
            "ReceivedAt": format_time(self.received_at),
        }


def make_receipt(
    *,
    message_id: str,
    sender_node: str,
    receiver_node: str,
    envelope_sha256: str,
    tracking: TrackingState,
    findings: Iterable[Finding],
    received_at: datetime,
    delivery_number: int,
) -> Receipt:
    """A receipt; findings beyond :data:`MAX_FINDINGS` are counted, errors kept first.

    The receiver stores the encoded receipt with the envelope, in the same
    transaction, and answers every retry with those bytes.
    """
    ordered = sorted(findings, key=lambda f: _LEVEL_ORDER[f.level])
    return Receipt(
        message_id=message_id,
        sender_node=sender_node,
        receiver_node=receiver_node,
        envelope_sha256=envelope_sha256,
        tracking=tracking,
        delivery_number=delivery_number,
        findings=tuple(ordered[:MAX_FINDINGS]),
        findings_omitted=max(0, len(ordered) - MAX_FINDINGS),
        received_at=received_at,
    )


def receipt_for(
    opened: OpenedEnvelope,
    *,
    findings: Iterable[Finding],
    readable: bool,
    received_at: datetime,
    delivery_number: int,
) -> Receipt:
    """The receipt for an opened envelope, its state decided by :func:`delivery_state`."""
    kept = list(findings)
    return make_receipt(
        message_id=opened.envelope.message_id,
        sender_node=opened.envelope.sender_node,
        receiver_node=opened.envelope.receiver_node,
        envelope_sha256=opened.message.digest,
        tracking=delivery_state(kept, readable=readable),
        findings=kept,
        received_at=received_at,
        delivery_number=delivery_number,
    )


def encode_receipt(receipt: Receipt) -> bytes:
    """The receipt's canonical bytes: what is stored, signed and sent."""
    return rfc8785.dumps(receipt.to_json())


def sign_receipt(signer: Signer, receipt: Receipt, encoded: bytes, *, attempt_at: datetime) -> str:
    """The receiving node's detached JWS over ``encoded``, for one answer."""
    return sign_message(
        signer,
        sender=receipt.receiver_node,
        message_id=receipt_message_id(receipt.message_id),
        body=encoded,
        attempt_at=attempt_at,
    )


def decode_receipt(data: bytes, max_bytes: int = MAX_RECEIPT_BYTES) -> Receipt:
    """The receipt in ``data``, which must be exactly its canonical encoding."""
    if len(data) > max_bytes:
        raise _malformed(f"the receipt has {len(data)} bytes, more than the {max_bytes} accepted")
    document = load_json(data, what="the receipt", code="receipt.malformed")
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise _malformed(f"a receipt must be an object of exactly {', '.join(sorted(_KEYS))}")
    if document["Format"] != FORMAT:
        raise _malformed(f"receipt format {document['Format']!r} is not {FORMAT}")
    try:
        receipt = Receipt(
            message_id=_text(document, "MessageId"),
            sender_node=_text(document, "SenderNode"),
            receiver_node=_text(document, "ReceiverNode"),
            envelope_sha256=_text(document, "EnvelopeSHA256"),
            tracking=TrackingState(_text(document, "HUBTrackingInfo")),
            delivery_number=_integer(document, "DeliveryNumber"),
            findings=tuple(_finding(item) for item in _list(document, "Findings")),
            findings_omitted=_integer(document, "FindingsOmitted"),
            received_at=parse_time(_text(document, "ReceivedAt")),
        )
    except ValueError as exc:  # a TrackingState, Level, Area or time that is not one
        raise _malformed(f"the receipt is malformed: {exc}") from exc
    if encode_receipt(receipt) != data:
        raise _malformed("the receipt is not in canonical form (RFC 8785)")
    return receipt


def _text(document: dict[str, Any], key: str) -> str:
    value = document[key]
    if not isinstance(value, str):
        raise _malformed(f"receipt {key} must be a string")
    return value


def _integer(document: dict[str, Any], key: str) -> int:
    value = document[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _malformed(f"receipt {key} must be an integer")
    return value


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document[key]
    if not isinstance(value, list):
        raise _malformed(f"receipt {key} must be a list")
    return value


def _finding(item: Any) -> Finding:
    if (
        not isinstance(item, dict)
        or set(item) != _FINDING_KEYS
        or not all(isinstance(v, str) for v in item.values())
    ):
        raise _malformed("a receipt finding must be an object of five strings")
    return Finding(
        Level(item["level"]), Area(item["area"]), item["path"], item["code"], item["message"]
    )


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    receipt: Receipt
    message: VerifiedMessage
    """Who signed it, with which key and when: for the evidence log."""


def verify_receipt(
    receipt_bytes: bytes,
    token: str,
    *,
    keys: KeyLookup,
    expected_sender_node: str,
    expected_digest: str,
    recorded_at: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> VerifiedReceipt:
    """Accept a receipt only if it proves delivery of what was sent.

    ``expected_sender_node`` is the receipt's sender: the node the envelope was
    sent to. The receipt must verify under that node's key, be signed as the
    receipt of the message it names, speak for that node, and name
    ``expected_digest``, the SHA-256 of the encoded envelope as sent. Raises
    TrustError (signature, key, window) or ExchangeError (``receipt.*``).
    """
    if len(receipt_bytes) > MAX_RECEIPT_BYTES:
        raise _malformed(f"the receipt has {len(receipt_bytes)} bytes, more than accepted")
    message = verify_message(
        token,
        receipt_bytes,
        keys=keys,
        recorded_at=recorded_at,
        claimed_sender=expected_sender_node,
        window=window,
    )
    receipt = decode_receipt(receipt_bytes)
    if message.message_id != receipt_message_id(receipt.message_id):
        raise ExchangeError(
            f"signed as {message.message_id!r}, not as the receipt of {receipt.message_id!r}",
            code="receipt.id-mismatch",
        )
    if receipt.receiver_node != expected_sender_node:
        raise ExchangeError(
            f"the receipt speaks for {receipt.receiver_node}, but {expected_sender_node} signed it",
            code="receipt.wrong-node",
        )
    if receipt.envelope_sha256 != expected_digest:
        raise ExchangeError(
            f"the receipt names envelope {receipt.envelope_sha256[:16]}…, "
            f"not the one sent ({expected_digest[:16]}…)",
            code="receipt.digest-mismatch",
        )
    return VerifiedReceipt(receipt=receipt, message=message)


_HUB_AREA: Final = {
    Area.XML: "Schema",
    Area.SCHEMA: "Schema",
    Area.CODELIST: "Mapping",
    Area.STRUCTURE: "MandatoryElements",
    Area.RULE: "MandatoryElements",
    Area.SIGNATURE: "MandatoryElements",
    Area.POLICY: "MandatoryElements",
}
_HUB_LEVEL: Final = {Level.ERROR: "SEVERE", Level.WARNING: "WARNING", Level.INFO: "INFO"}


def hub_validation_result(finding: Finding) -> dict[str, str]:
    """A finding as the hub's ``validationResult`` {area, field, level, msg}.

    The hub has three areas: greenlane's xml and schema map to ``Schema``, its
    code lists to ``Mapping``, and everything else (structure, rules,
    signature, policy) to ``MandatoryElements``; the path is the ``field``, and
    the stable code leads the ``msg`` so it survives the narrower form.
    """
    return {
        "area": _HUB_AREA[finding.area],
        "field": finding.path,
        "level": _HUB_LEVEL[finding.level],
        "msg": f"{finding.code}: {finding.message}",
    }


def envelope_digest(encoded: bytes) -> str:
    """SHA-256 (hex) of encoded envelope bytes: what a receipt must name."""
    return hashlib.sha256(encoded).hexdigest()
