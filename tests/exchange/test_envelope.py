"""Envelopes between nodes: exact bytes both ways, signed per attempt, refused when wrong."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from greenlane.exchange.envelope import (
    DocumentType,
    Envelope,
    ExchangeError,
    OpenedEnvelope,
    decode,
    document_types,
    encode,
    format_time,
    make_envelope,
    open_envelope,
    parse_time,
    sign_attempt,
)
from greenlane.trust.messages import sign_message
from greenlane.trust.signers import SoftwareSigner, TrustError
from tests.trust.keyring import T0, Keyring

PAYLOAD = (
    b'<?xml version="1.0"?>\n<rsm:SPSCertificate xmlns:rsm="urn:x">\xd0\x90</rsm:SPSCertificate>'
)
NODES = {"az-node": "AZ", "ru-node": "RU", "ge-node": "GE"}


class Corridor:
    """Three countries' node keys; the RU node's registry knows all of them."""

    def __init__(self) -> None:
        self.az, self.ru, self.ge = Keyring("AZ"), Keyring("RU"), Keyring("GE")
        self.az_node = self.az.make("az-node")
        self.ru_node = self.ru.make("ru-node")
        self.ge_node = self.ge.make("ge-node")
        self.at_ru = Keyring("RU").add(self.ru).add(self.az).add(self.ge)


@pytest.fixture(scope="module")
def corridor() -> Corridor:
    return Corridor()


def _envelope(**changes: object) -> Envelope:
    fields: dict[str, object] = {
        "from_country": "AZ",
        "to_country": "RU",
        "sender_node": "az-node",
        "receiver_node": "ru-node",
        "document_type": "851",
        "document_status": "70",
        "document_number": "AZ-2026-000123",
        "payload": PAYLOAD,
        "media_type": "application/xml",
        "created_at": T0,
    }
    fields.update(changes)
    return make_envelope(**fields)  # type: ignore[arg-type]


def _open(
    corridor: Corridor,
    data: bytes,
    signer: SoftwareSigner | None = None,
    *,
    sender: str = "az-node",
    max_bytes: int = 1_000_000,
) -> OpenedEnvelope:
    """Sign arbitrary bytes as the AZ node would, then open them at the RU node."""
    message_id = json.loads(data)["Header"]["MessageId"] if data.startswith(b"{") else "x"
    token = sign_message(
        signer or corridor.az_node, sender=sender, message_id=message_id, body=data, attempt_at=T0
    )
    return open_envelope(
        data,
        token,
        keys=corridor.at_ru,
        node_country=NODES.get,
        receiver_node="ru-node",
        recorded_at=T0 + timedelta(seconds=1),
        max_bytes=max_bytes,
    )


def _rewrap(
    data: bytes, header: dict[str, str] | None = None, payload: bytes | None = None
) -> bytes:
    """The envelope re-encoded canonically with a changed header or payload (no digest fix)."""
    document = json.loads(data)
    document["Header"].update(header or {})
    if payload is not None:
        document["Payload"] = base64.b64encode(payload).decode()
    return rfc8785.dumps(document)


# -- the envelope and its wire form --------------------------------------------------------


def test_an_envelope_round_trips_to_the_same_header_and_exact_payload() -> None:
    """decode(encode(e, p)) gives back e and p, and encoding twice gives the same bytes."""
    envelope = _envelope()
    data = encode(envelope, PAYLOAD)
    assert decode(data) == (envelope, PAYLOAD)
    assert encode(envelope, PAYLOAD) == data


def test_the_wire_form_uses_the_hub_names_for_the_hub_fields() -> None:
    """The header says From, To, CertificateType, CertificateStatus, NPPOCertificateNumber."""
    document = json.loads(encode(_envelope(), PAYLOAD))
    assert document["Format"] == "greenlane-envelope/1"
    header = document["Header"]
    assert {k: header[k] for k in ("From", "To", "CertificateType", "CertificateStatus")} == {
        "From": "AZ",
        "To": "RU",
        "CertificateType": "851",
        "CertificateStatus": "70",
    }
    assert header["NPPOCertificateNumber"] == "AZ-2026-000123"
    assert header["PayloadSHA256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert header["CreatedAt"] == "2026-12-01T08:00:00.000000Z"
    assert base64.b64decode(document["Payload"]) == PAYLOAD


def test_a_message_id_is_a_fresh_uuid_unless_given() -> None:
    """Two envelopes get two ids; a given id (a retry rebuilt from the outbox) is kept."""
    first, second = _envelope(), _envelope()
    assert first.message_id != second.message_id
    assert str(uuid.UUID(first.message_id)) == first.message_id
    given_id = str(uuid.uuid4())
    assert _envelope(message_id=given_id).message_id == given_id


def test_a_zoned_creation_time_is_kept_as_the_same_instant_in_utc() -> None:
    """A Baku time (UTC+4) is the same instant on the wire, written in UTC."""
    baku = datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=4)))
    envelope = _envelope(created_at=baku)
    assert envelope.created_at == T0
    assert envelope.created_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"from_country": "az"}, "from_country"),
        ({"to_country": "RUS"}, "to_country"),
        ({"sender_node": "AZ node"}, "sender_node"),
        ({"receiver_node": ""}, "receiver_node"),
        ({"document_number": ""}, "1 to 256"),
        ({"document_number": "x" * 257}, "1 to 256"),
        ({"document_number": "AZ\n123"}, "control"),
        ({"message_id": "not-a-uuid"}, "UUID"),
        ({"message_id": str(uuid.uuid4()).upper()}, "UUID"),
        ({"media_type": "text/plain"}, "media type"),
        ({"created_at": datetime(2026, 12, 1)}, "zoned"),
    ],
)
def test_malformed_header_values_are_refused_when_made(
    changes: dict[str, object], fragment: str
) -> None:
    """An envelope cannot be made with a value the wire would not carry."""
    with pytest.raises(ExchangeError, match=fragment) as caught:
        _envelope(**changes)
    assert caught.value.code == "envelope.malformed"


def test_document_types_are_a_registry_open_to_further_kinds() -> None:
    """SPS types are known; a customs type joins by registration, and unknown ones are refused."""
    assert set(document_types()) >= {"851", "657", "852", "853"}
    with pytest.raises(ExchangeError) as caught:
        _envelope(document_type="785")
    assert caught.value.code == "envelope.unknown-type"
    manifest = DocumentType("785", "Cargo manifest", frozenset({"9", "1"}))
    types = document_types(manifest)
    envelope = _envelope(
        document_type="785", document_status="9", media_type="application/json", types=types
    )
    data = encode(envelope, PAYLOAD)
    assert decode(data, types=types) == (envelope, PAYLOAD)
    with pytest.raises(ExchangeError) as refused:
        decode(data)
    assert refused.value.code == "envelope.unknown-type"
    with pytest.raises(ValueError, match="already known"):
        document_types(DocumentType("851", "again", frozenset({"70"})))


def test_a_status_the_type_does_not_have_is_refused() -> None:
    """An SPS certificate's status is one of the UNCL 4405 codes the code list holds."""
    with pytest.raises(ExchangeError) as caught:
        _envelope(document_status="99")
    assert caught.value.code == "envelope.unknown-status"


def test_a_payload_that_is_not_the_named_one_is_not_encoded() -> None:
    """The sender cannot put a header and a payload that disagree in its outbox."""
    with pytest.raises(ExchangeError) as caught:
        encode(_envelope(), PAYLOAD + b" ")
    assert caught.value.code == "envelope.digest-mismatch"


def test_a_tampered_payload_is_a_digest_mismatch() -> None:
    """Changing the payload without the header's digest is caught on decoding."""
    data = _rewrap(encode(_envelope(), PAYLOAD), payload=PAYLOAD.replace(b"\xd0\x90", b"B"))
    with pytest.raises(ExchangeError) as caught:
        decode(data)
    assert caught.value.code == "envelope.digest-mismatch"


def test_an_oversized_envelope_is_refused_before_it_is_read() -> None:
    """One byte over the limit is refused as too large, even if it is not JSON."""
    data = encode(_envelope(), PAYLOAD)
    assert decode(data, len(data))[1] == PAYLOAD
    for too_big in (data, b"\xff" * (len(data) + 1)):
        with pytest.raises(ExchangeError) as caught:
            decode(too_big, len(data) - 1)
        assert caught.value.code == "envelope.too-large"


def _malformed_inputs() -> list[bytes]:
    data = encode(_envelope(), PAYLOAD)
    document = json.loads(data)
    spaced = json.dumps(document).encode()
    extra = rfc8785.dumps({**document, "Extra": "1"})
    missing = rfc8785.dumps({k: v for k, v in document.items() if k != "Payload"})
    wrong_format = rfc8785.dumps({**document, "Format": "greenlane-envelope/2"})
    unpadded = rfc8785.dumps({**document, "Payload": document["Payload"].rstrip("=")})
    not_b64 = rfc8785.dumps({**document, "Payload": "!!!!"})
    urlsafe = rfc8785.dumps({**document, "Payload": base64.urlsafe_b64encode(b"\xfb\xff").decode()})
    number_header = rfc8785.dumps({**document, "Header": {**document["Header"], "To": 7}})
    bad_time = rfc8785.dumps(
        {**document, "Header": {**document["Header"], "CreatedAt": "2026-12-01T08:00:00Z"}}
    )
    header_extra = rfc8785.dumps({**document, "Header": {**document["Header"], "hubX": "1"}})
    duplicate = data[:-1] + b',"Payload":"AA=="}'
    return [
        b"",
        b"not json",
        b"[]",
        b'"a string"',
        b"\xef\xbb\xbf" + data,  # a byte order mark
        data.decode().encode("utf-16"),
        b"[" * 100_000,
        spaced,
        extra,
        missing,
        wrong_format,
        unpadded,
        not_b64,
        urlsafe,
        number_header,
        bad_time,
        header_extra,
        duplicate,
        data[:-1],
    ]


@pytest.mark.parametrize("data", _malformed_inputs())
def test_malformed_envelopes_are_refused_as_malformed(data: bytes) -> None:
    """Bad JSON, bad base64, extra or missing fields and non-canonical bytes are one code."""
    with pytest.raises(ExchangeError) as caught:
        decode(data, 1_000_000)
    assert caught.value.code == "envelope.malformed"


def test_times_have_one_spelling() -> None:
    """format_time and parse_time are inverse, and other spellings of a time are refused."""
    assert parse_time(format_time(T0)) == T0
    for text in (
        "2026-12-01T08:00:00Z",
        "2026-12-01T08:00:00.000000+00:00",
        "2026-13-01T08:00:00.000000Z",
    ):
        with pytest.raises(ValueError, match=r"UTC time|month"):
            parse_time(text)


# -- a Hypothesis property -----------------------------------------------------------------

_NODE_IDS = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,62}\Z")
_COUNTRIES = st.from_regex(r"\A[A-Z]{2}\Z")
_NUMBERS = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S")) | st.just(" "),
    min_size=1,
    max_size=256,
)
_ZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)
)


@st.composite
def _envelopes(draw: st.DrawFn) -> tuple[Envelope, bytes]:
    types = document_types()
    kind = types[draw(st.sampled_from(sorted(types)))]
    payload = draw(st.binary(max_size=4096))
    envelope = make_envelope(
        from_country=draw(_COUNTRIES),
        to_country=draw(_COUNTRIES),
        sender_node=draw(_NODE_IDS),
        receiver_node=draw(_NODE_IDS),
        document_type=kind.code,
        document_status=draw(st.sampled_from(sorted(kind.statuses))),
        document_number=draw(_NUMBERS),
        payload=payload,
        media_type=draw(st.sampled_from(["application/xml", "application/json"])),
        created_at=draw(
            st.datetimes(
                min_value=datetime(1970, 1, 2),
                max_value=datetime(9998, 12, 31),
                timezones=_ZONES,
            )
        ),
        message_id=str(draw(st.uuids())),
    )
    return envelope, payload


@given(_envelopes())
def test_any_envelope_and_payload_round_trip_exactly(pair: tuple[Envelope, bytes]) -> None:
    """Whatever the payload bytes and header values, decoding gives them back exactly."""
    envelope, payload = pair
    data = encode(envelope, payload)
    decoded, decoded_payload = decode(data, len(data))
    assert decoded == envelope
    assert decoded_payload == payload
    assert encode(decoded, decoded_payload) == data


# -- signed attempts -----------------------------------------------------------------------


def _signed(corridor: Corridor, envelope: Envelope, at: datetime = T0) -> tuple[bytes, str]:
    data = encode(envelope, PAYLOAD)
    return data, sign_attempt(corridor.az_node, envelope, data, attempt_at=at)


def _open_signed(corridor: Corridor, data: bytes, token: str, **options: object) -> OpenedEnvelope:
    arguments: dict[str, object] = {
        "keys": corridor.at_ru,
        "node_country": NODES.get,
        "receiver_node": "ru-node",
        "recorded_at": T0 + timedelta(seconds=1),
    }
    arguments.update(options)
    return open_envelope(data, token, **arguments)  # type: ignore[arg-type]


def test_a_signed_envelope_opens_with_what_its_signature_proved(corridor: Corridor) -> None:
    """The receiver gets header, exact payload, sender, key and the digest a receipt names."""
    envelope = _envelope()
    data, token = _signed(corridor, envelope)
    opened = _open_signed(corridor, data, token)
    assert (opened.envelope, opened.payload) == (envelope, PAYLOAD)
    assert opened.message.sender == "az-node"
    assert opened.message.message_id == envelope.message_id
    assert opened.message.digest == hashlib.sha256(data).hexdigest()


def test_every_attempt_is_signed_afresh_over_the_same_bytes(corridor: Corridor) -> None:
    """A retry an hour later has a new signature over identical bytes and still opens."""
    envelope = _envelope()
    data, first = _signed(corridor, envelope)
    later = T0 + timedelta(hours=1)
    retry, second = _signed(corridor, envelope, later)
    assert retry == data
    assert first != second
    opened = _open_signed(corridor, retry, second, recorded_at=later)
    assert opened.message.attempt_at == later


def test_bytes_changed_after_signing_are_refused(corridor: Corridor) -> None:
    """A payload swapped in transit (digest fixed or not) breaks the signature."""
    envelope = _envelope()
    data, token = _signed(corridor, envelope)
    tampered = _rewrap(
        data, payload=b"<x/>", header={"PayloadSHA256": hashlib.sha256(b"<x/>").hexdigest()}
    )
    with pytest.raises(TrustError) as caught:
        _open_signed(corridor, tampered, token)
    assert caught.value.code == "message.bad-signature"


def test_a_signed_envelope_with_a_tampered_payload_is_a_digest_mismatch(corridor: Corridor) -> None:
    """A sender that signs a payload its header does not name is refused."""
    data = _rewrap(encode(_envelope(), PAYLOAD), payload=b"<other/>")
    with pytest.raises(ExchangeError) as caught:
        _open(corridor, data)
    assert caught.value.code == "envelope.digest-mismatch"


@pytest.mark.parametrize(
    "changes",
    [{"receiver_node": "ru-node-2"}, {"to_country": "GE"}],
)
def test_an_envelope_for_another_receiver_is_refused(
    corridor: Corridor, changes: dict[str, str]
) -> None:
    """An envelope addressed to another node, or to this node as another country, is refused."""
    data, token = _signed(corridor, _envelope(**changes))
    with pytest.raises(ExchangeError) as caught:
        _open_signed(corridor, data, token)
    assert caught.value.code == "envelope.wrong-receiver"


def test_a_sender_node_of_another_country_is_refused(corridor: Corridor) -> None:
    """The GE node, with its own valid key, cannot send as From AZ."""
    envelope = _envelope(sender_node="ge-node")
    data = encode(envelope, PAYLOAD)
    token = sign_attempt(corridor.ge_node, envelope, data, attempt_at=T0)
    with pytest.raises(ExchangeError, match="a node of GE") as caught:
        _open_signed(corridor, data, token)
    assert caught.value.code == "envelope.wrong-sender"


def test_a_sender_node_the_registry_does_not_place_is_refused(corridor: Corridor) -> None:
    """A signing node whose country the registry does not know cannot speak for any country."""
    data, token = _signed(corridor, _envelope())
    with pytest.raises(ExchangeError, match="unknown node") as caught:
        _open_signed(corridor, data, token, node_country={"ru-node": "RU"}.get)
    assert caught.value.code == "envelope.wrong-sender"


def test_an_envelope_naming_another_sender_than_its_signer_is_refused(corridor: Corridor) -> None:
    """The AZ node cannot send an envelope whose header says it came from another node."""
    envelope = _envelope(sender_node="az-node-2")
    data = encode(envelope, PAYLOAD)
    token = sign_attempt(
        corridor.az_node, replace(envelope, sender_node="az-node"), data, attempt_at=T0
    )
    with pytest.raises(ExchangeError) as caught:
        _open_signed(corridor, data, token)
    assert caught.value.code == "envelope.wrong-sender"


def test_a_signature_under_another_message_id_is_refused(corridor: Corridor) -> None:
    """Duplicates are found by message id, so the signed id and the header's must agree."""
    envelope = _envelope()
    data = encode(envelope, PAYLOAD)
    other = replace(envelope, message_id=str(uuid.uuid4()))
    token = sign_attempt(corridor.az_node, other, data, attempt_at=T0)
    with pytest.raises(ExchangeError) as caught:
        _open_signed(corridor, data, token)
    assert caught.value.code == "envelope.id-mismatch"


def test_an_unsigned_or_unknown_signers_envelope_is_refused_before_parsing(
    corridor: Corridor,
) -> None:
    """Garbage from a key the registry does not hold is refused by its signature, not read."""
    stranger = Keyring("AZ").make("az-node")
    with pytest.raises(TrustError) as caught:
        _open(corridor, b"not json at all", stranger)
    assert caught.value.code == "message.unknown-key"


def test_an_oversized_signed_envelope_is_refused(corridor: Corridor) -> None:
    """The size limit holds before the signature is even checked."""
    data, token = _signed(corridor, _envelope())
    with pytest.raises(ExchangeError) as caught:
        _open_signed(corridor, data, token, max_bytes=len(data) - 1)
    assert caught.value.code == "envelope.too-large"
