"""The envelope: what one node sends another, its wire form, its signature and its checks.

An envelope is a small header (the IPPC hub's ``EnvelopeHeader`` fields plus
greenlane's own) and a payload that travels as its exact bytes: the signed
certificate is never re-serialised, so its XML signature still verifies at
the other end. On the wire it is one RFC 8785 canonical JSON object::

    {"Format": "greenlane-envelope/1",
     "Header": {"From": "AZ", "To": "RU", "CertificateType": "851", ...},
     "Payload": "<standard base64 of the payload bytes, padded>"}

Encoding is deterministic, so every retry of a message sends the same bytes
(the receiver refuses a message id seen with other bytes), and decoding
accepts only the exact bytes :func:`encode` would write: there is one encoding
per envelope, nothing to normalise and no second reading of the same bytes.

Each sending attempt signs the encoded bytes with a detached JWS
(:mod:`greenlane.trust.messages`); :func:`open_envelope` checks that
signature first, so only authenticated bytes are ever parsed.

    GreenlaneError
     └── ExchangeError             envelope.* and receipt.*: an envelope or a
                                   receipt refused; ``code`` says why
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any, Final

import rfc8785

from greenlane.errors import GreenlaneError
from greenlane.sps import codelists
from greenlane.trust.keys import KeyLookup
from greenlane.trust.messages import (
    DEFAULT_WINDOW,
    VerifiedMessage,
    sign_message,
    verify_message,
)
from greenlane.trust.signers import Signer

FORMAT: Final = "greenlane-envelope/1"
MEDIA_TYPES: Final = frozenset({"application/xml", "application/json"})
DEFAULT_MAX_BYTES: Final = 8 * 1024 * 1024
MAX_NUMBER_LENGTH: Final = 256

_COUNTRY = re.compile(r"[A-Z]{2}")
NODE_ID: Final = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # the corridor file's participant id
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")

NodeCountry = Callable[[str], str | None]
"""A node id → its country (ISO 3166 alpha-2), None for a node not in the registry."""


class ExchangeError(GreenlaneError):
    """An envelope or receipt refused before any use; ``code`` says why."""

    code = "envelope.malformed"


# -- document types ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentType:
    """A kind of document an envelope may carry, with the statuses it can have.

    A registry rather than an enum: SPS certificates come first, and customs
    documents (manifests, control results) join later as more entries, not
    as a change to the wire format.
    """

    code: str
    name: str
    statuses: frozenset[str]


@cache
def _sps_types() -> Mapping[str, DocumentType]:
    statuses = frozenset(codelists.status_codes())
    return MappingProxyType(
        {
            code: DocumentType(code, name, statuses)
            for code, name in codelists.document_types().items()
        }
    )


def document_types(*extra: DocumentType) -> Mapping[str, DocumentType]:
    """The SPS certificate types (851, 657, 852, 853) and any ``extra`` ones.

    An extra type may not reuse a known code: a code means one thing on both nodes.
    """
    table = dict(_sps_types())
    for entry in extra:
        if not _CODE.fullmatch(entry.code) or not entry.statuses:
            raise ValueError(f"document type {entry.code!r}: malformed code or no statuses")
        if entry.code in table:
            raise ValueError(f"document type {entry.code} is already known")
        table[entry.code] = entry
    return MappingProxyType(table)


# -- the envelope --------------------------------------------------------------------------

_HEADER_KEYS: Final = {
    # hub's EnvelopeHeader name → attribute
    "From": "from_country",
    "To": "to_country",
    "CertificateType": "document_type",
    "CertificateStatus": "document_status",
    "NPPOCertificateNumber": "document_number",
    # greenlane's own
    "MessageId": "message_id",
    "SenderNode": "sender_node",
    "ReceiverNode": "receiver_node",
    "PayloadSHA256": "payload_sha256",
    "PayloadMediaType": "media_type",
    "CreatedAt": "created_at",
}


def _malformed(message: str) -> ExchangeError:
    return ExchangeError(message, code="envelope.malformed")


def format_time(value: datetime) -> str:
    """A time as the wire writes it: UTC, microseconds, ``Z``; one text per instant."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`; any other spelling is refused with ValueError."""
    if not _TIME.fullmatch(text):
        raise ValueError(f"{text!r} is not a UTC time with microseconds and Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The header of one message; the payload travels beside it as exact bytes.

    A constructed Envelope is always well-formed (checked here, so a decoded
    and a freshly made one obey the same rules); whether its document type is
    known is checked against a registry by :func:`make_envelope` and :func:`decode`.
    """

    from_country: str
    """Hub ``From``: the sending country, ISO 3166 alpha-2."""
    to_country: str
    """Hub ``To``: the receiving country."""
    document_type: str
    """Hub ``CertificateType`` (an int there): a code in the document type registry."""
    document_status: str
    """Hub ``CertificateStatus`` (an int there): 70 issued, 40 withdrawn..."""
    document_number: str
    """Hub ``NPPOCertificateNumber``: the issuer's number of the document."""
    message_id: str
    """A UUID in canonical form, the same on every retry: what duplicates are found by."""
    sender_node: str
    receiver_node: str
    payload_sha256: str
    """SHA-256 of the payload bytes, lowercase hex."""
    media_type: str
    created_at: datetime
    """When the message was made (not when an attempt was sent), UTC."""

    def __post_init__(self) -> None:
        for name, pattern in (
            ("from_country", _COUNTRY),
            ("to_country", _COUNTRY),
            ("document_type", _CODE),
            ("document_status", _CODE),
            ("sender_node", NODE_ID),
            ("receiver_node", NODE_ID),
            ("payload_sha256", SHA256_HEX),
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise _malformed(f"envelope {name} {value!r} is malformed")
        number = self.document_number
        if not isinstance(number, str) or not 0 < len(number) <= MAX_NUMBER_LENGTH:
            raise _malformed(f"document number must have 1 to {MAX_NUMBER_LENGTH} characters")
        if not number.isprintable():
            raise _malformed(f"document number {number!r} has control characters")
        if not isinstance(self.message_id, str) or not is_uuid(self.message_id):
            raise _malformed(f"message id {self.message_id!r} is not a canonical UUID")
        if self.media_type not in MEDIA_TYPES:
            raise _malformed(
                f"payload media type {self.media_type!r} is not one of {sorted(MEDIA_TYPES)}"
            )
        if not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None:
            raise _malformed("created_at must be a zoned time")
        if self.created_at.tzinfo is not UTC:
            object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))

    def header(self) -> dict[str, str]:
        """The header as the wire names it (hub names for the hub's fields)."""
        values = {wire: getattr(self, attr) for wire, attr in _HEADER_KEYS.items()}
        values["CreatedAt"] = format_time(self.created_at)
        return values


def is_uuid(text: str) -> bool:
    """True for a UUID in its one canonical spelling (lowercase, hyphenated)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _check_type(envelope: Envelope, types: Mapping[str, DocumentType] | None) -> None:
    known = document_types() if types is None else types
    entry = known.get(envelope.document_type)
    if entry is None:
        raise ExchangeError(
            f"document type {envelope.document_type!r} is not a known type "
            f"({', '.join(sorted(known))})",
            code="envelope.unknown-type",
        )
    if envelope.document_status not in entry.statuses:
        raise ExchangeError(
            f"status {envelope.document_status!r} is not a status of document type "
            f"{entry.code} ({', '.join(sorted(entry.statuses))})",
            code="envelope.unknown-status",
        )


def make_envelope(
    *,
    from_country: str,
    to_country: str,
    sender_node: str,
    receiver_node: str,
    document_type: str,
    document_status: str,
    document_number: str,
    payload: bytes,
    media_type: str,
    created_at: datetime,
    message_id: str | None = None,
    types: Mapping[str, DocumentType] | None = None,
) -> Envelope:
    """A new envelope for ``payload``; a fresh message id unless one is given.

    Made once per message, when the document enters the outbox: every retry
    then sends this same envelope, so its message id and bytes never change.
    """
    envelope = Envelope(
        from_country=from_country,
        to_country=to_country,
        document_type=document_type,
        document_status=document_status,
        document_number=document_number,
        message_id=str(uuid.uuid4()) if message_id is None else message_id,
        sender_node=sender_node,
        receiver_node=receiver_node,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        media_type=media_type,
        created_at=created_at,
    )
    _check_type(envelope, types)
    return envelope


# -- wire form -----------------------------------------------------------------------------


def encode(envelope: Envelope, payload: bytes) -> bytes:
    """The envelope's wire bytes: canonical JSON, the payload in base64.

    Refuses a payload that is not the one the header names, so a sender can
    never put a mismatched pair in its outbox.
    """
    if hashlib.sha256(payload).hexdigest() != envelope.payload_sha256:
        raise ExchangeError(
            "the payload is not the one the envelope names", code="envelope.digest-mismatch"
        )
    return _wire(envelope, payload)


def _wire(envelope: Envelope, payload: bytes) -> bytes:
    return rfc8785.dumps(
        {
            "Format": FORMAT,
            "Header": envelope.header(),
            "Payload": base64.b64encode(payload).decode("ascii"),
        }
    )


def load_json(data: bytes, *, what: str, code: str) -> object:
    """Parse UTF-8 JSON, turning every way it can fail into one refusal with ``code``.

    Shared with receipts: both parse bytes from the partner node, and both then
    insist that re-encoding gives the same bytes back (see :func:`decode`).
    """
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ExchangeError(f"{what} is not JSON: {exc}", code=code) from exc


def decode(
    data: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    types: Mapping[str, DocumentType] | None = None,
) -> tuple[Envelope, bytes]:
    """The envelope and exact payload bytes in ``data``, or ExchangeError saying why not.

    Checks, in order: size (before reading anything), JSON, the fields and their
    forms, that the bytes are exactly the canonical encoding, the document type
    and status, and that the payload is the one the header names.
    """
    if len(data) > max_bytes:
        raise ExchangeError(
            f"the envelope has {len(data)} bytes, more than the {max_bytes} accepted",
            code="envelope.too-large",
        )
    document = load_json(data, what="the envelope", code="envelope.malformed")
    if not isinstance(document, dict) or set(document) != {"Format", "Header", "Payload"}:
        raise _malformed("the envelope must be an object of Format, Header and Payload")
    if document["Format"] != FORMAT:
        raise _malformed(f"envelope format {document['Format']!r} is not {FORMAT}")
    envelope = _header_from(document["Header"])
    text = document["Payload"]
    if not isinstance(text, str):
        raise _malformed("the payload must be a base64 string")
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"the payload is not base64: {exc}") from exc
    if _wire(envelope, payload) != data:
        raise _malformed("the envelope is not in canonical form (RFC 8785, padded base64)")
    _check_type(envelope, types)
    if hashlib.sha256(payload).hexdigest() != envelope.payload_sha256:
        raise ExchangeError(
            "the payload's SHA-256 is not the one in the envelope header",
            code="envelope.digest-mismatch",
        )
    return envelope, payload


def _header_from(header: Any) -> Envelope:
    if not isinstance(header, dict) or set(header) != set(_HEADER_KEYS):
        raise _malformed(f"the envelope header must have exactly {', '.join(_HEADER_KEYS)}")
    if not all(isinstance(value, str) for value in header.values()):
        raise _malformed("every envelope header field must be a string")
    values = {attr: header[wire] for wire, attr in _HEADER_KEYS.items()}
    try:
        values["created_at"] = parse_time(header["CreatedAt"])
    except ValueError as exc:
        raise _malformed(f"CreatedAt: {exc}") from exc
    return Envelope(**values)


# -- signed attempts -----------------------------------------------------------------------


def sign_attempt(
    signer: Signer, envelope: Envelope, encoded: bytes, *, attempt_at: datetime
) -> str:
    """The detached JWS for one sending attempt of ``encoded`` (made by :func:`encode`).

    Signed afresh on every attempt, with the envelope's message id, so the
    receiver's freshness window holds however long the partner was away.
    """
    return sign_message(
        signer,
        sender=envelope.sender_node,
        message_id=envelope.message_id,
        body=encoded,
        attempt_at=attempt_at,
    )


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """An envelope that passed every check, with what its signature proved."""

    envelope: Envelope
    payload: bytes
    message: VerifiedMessage
    """Sender, key, attempt time and ``digest``: the SHA-256 of the encoded envelope
    bytes, which the receipt names."""


def open_envelope(
    data: bytes,
    token: str,
    *,
    keys: KeyLookup,
    node_country: NodeCountry,
    receiver_node: str,
    recorded_at: datetime,
    max_bytes: int = DEFAULT_MAX_BYTES,
    types: Mapping[str, DocumentType] | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> OpenedEnvelope:
    """Check a received envelope completely; raise ExchangeError or TrustError saying why.

    Size first (nothing large is even hashed), then the signature (so only a
    registered node's bytes are parsed), then the envelope itself, then that
    it is for this node and that its sending node speaks for its ``From``
    country. Whether the message is new, a retry or a replay is the caller's
    next step (:func:`greenlane.trust.messages.record_message`), in its session.
    """
    if len(data) > max_bytes:
        raise ExchangeError(
            f"the envelope has {len(data)} bytes, more than the {max_bytes} accepted",
            code="envelope.too-large",
        )
    message = verify_message(token, data, keys=keys, recorded_at=recorded_at, window=window)
    envelope, payload = decode(data, max_bytes, types=types)
    if message.sender != envelope.sender_node:
        raise ExchangeError(
            f"signed by node {message.sender}, but the envelope names {envelope.sender_node}",
            code="envelope.wrong-sender",
        )
    if message.message_id != envelope.message_id:
        raise ExchangeError(
            f"signed as message {message.message_id!r}, but the envelope is "
            f"{envelope.message_id!r}",
            code="envelope.id-mismatch",
        )
    if envelope.receiver_node != receiver_node or envelope.to_country != node_country(
        receiver_node
    ):
        raise ExchangeError(
            f"the envelope is for node {envelope.receiver_node} in {envelope.to_country}, "
            f"not for this node {receiver_node}",
            code="envelope.wrong-receiver",
        )
    sender_country = node_country(envelope.sender_node)
    if sender_country != envelope.from_country:
        where = "an unknown node" if sender_country is None else f"a node of {sender_country}"
        raise ExchangeError(
            f"the envelope is from {envelope.from_country}, but {envelope.sender_node} is {where}",
            code="envelope.wrong-sender",
        )
    return OpenedEnvelope(envelope=envelope, payload=payload, message=message)
