"""Message signatures between nodes: who sent it, unchanged, fresh, and never twice."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from greenlane.trust.keys import KeyState, OwnerKind, key_id
from greenlane.trust.messages import record_message, sign_message, verify_message
from greenlane.trust.signers import Algorithm, SoftwareSigner, TrustError, verify_raw
from tests.trust.keyring import T0
from tests.trust.keyring import Keyring as Keys

BODY = b'{"envelope": {"from": "AZ", "to": "RU", "certificate": "AZ-2026-000123"}}'


@pytest.fixture
def keys() -> Keys:
    return Keys()


def _sign(signer: SoftwareSigner, body: bytes = BODY, at: datetime = T0, mid: str = "m-1") -> str:
    return sign_message(signer, sender="az-node", message_id=mid, body=body, attempt_at=at)


def _verify(keys: Keys, token: str, body: bytes = BODY, at: datetime = T0, **kw: object) -> object:
    return verify_message(token, body, keys=keys, recorded_at=at, **kw)  # type: ignore[arg-type]


def _refused(code: str, call: object, *args: object, **kwargs: object) -> None:
    with pytest.raises(TrustError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_a_signed_message_verifies_with_its_sender_id_and_attempt(
    keys: Keys, algorithm: Algorithm
) -> None:
    """RS256 and ES256: the verdict names the sender, message id, attempt time and key."""
    signer = keys.make("az-node", algorithm=algorithm)
    message = verify_message(
        _sign(signer),
        BODY,
        keys=keys,
        recorded_at=T0 + timedelta(seconds=2),
        claimed_sender="az-node",
    )
    assert (message.sender, message.message_id, message.attempt_at) == ("az-node", "m-1", T0)
    assert message.key_id == key_id(signer.certificate)


def test_the_signature_is_over_the_exact_bytes_as_rfc_7797_says(keys: Keys) -> None:
    """Signing input = base64url(protected) '.' raw body: checkable with nothing but the key."""
    signer = keys.make("az-node")
    protected, empty, signature = _sign(signer).split(".")
    assert empty == ""
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    assert header["b64"] is False
    assert header["crit"] == ["b64"]
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert verify_raw(signer.certificate, Algorithm.ES256, raw, protected.encode() + b"." + BODY)


def test_one_changed_byte_is_refused(keys: Keys) -> None:
    token = _sign(keys.make("az-node"))
    _refused("message.bad-signature", _verify, keys, token, BODY.replace(b"123", b"124"))


def test_an_unknown_key_is_refused(keys: Keys) -> None:
    stranger = Keys().make("az-node")
    _refused("message.unknown-key", _verify, keys, _sign(stranger))


def test_a_key_of_another_node_is_refused(keys: Keys) -> None:
    """A node cannot sign as another: the key's registered owner must be the sender."""
    other = keys.make("az-backup-node")
    _refused("message.wrong-sender", _verify, keys, _sign(other))


def test_an_agency_key_does_not_sign_messages(keys: Keys) -> None:
    agency = keys.make("az-node", kind=OwnerKind.AGENCY)
    _refused("message.wrong-sender", _verify, keys, _sign(agency))


def test_a_message_delivered_as_another_sender_is_refused(keys: Keys) -> None:
    token = _sign(keys.make("az-node"))
    _refused("message.wrong-sender", _verify, keys, token, claimed_sender="ru-node")


def test_a_revoked_key_is_refused_from_its_revocation_on(keys: Keys) -> None:
    signer = keys.make("az-node")
    kid = key_id(signer.certificate)
    keys.registered[kid] = replace(
        keys.registered[kid], state=KeyState.REVOKED, revoked_at=T0 - timedelta(seconds=1)
    )
    _refused("message.key-revoked", _verify, keys, _sign(signer))


def test_a_retired_key_still_verifies_a_retry_in_flight(keys: Keys) -> None:
    """Signed before the rotation, retried after it: within the grace period it verifies."""
    signer = keys.make("az-node")
    kid = key_id(signer.certificate)
    keys.registered[kid] = replace(
        keys.registered[kid], state=KeyState.RETIRED, retired_at=T0 - timedelta(hours=1)
    )
    assert _verify(keys, _sign(signer))


@pytest.mark.parametrize("offset", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_an_attempt_time_outside_the_window_is_refused(keys: Keys, offset: timedelta) -> None:
    token = _sign(keys.make("az-node"), at=T0 + offset)
    _refused("message.time-window", _verify, keys, token)


def test_a_retry_long_after_the_first_attempt_is_fresh(keys: Keys) -> None:
    """After a long outage the retry is signed afresh: its own attempt time is in the window."""
    signer = keys.make("az-node")
    later = T0 + timedelta(hours=8)
    assert _verify(keys, _sign(signer, at=later), at=later + timedelta(seconds=1))


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "HS256"},
        {"alg": "RS1"},
        {"alg": "ES256", "b64": True},
    ],
)
def test_algorithms_and_forms_outside_the_profile_are_refused(
    keys: Keys, header: dict[str, object]
) -> None:
    signer = keys.make("az-node")
    protected, _, signature = _sign(signer).split(".")
    original = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(original | header).encode()).rstrip(b"=").decode()
    with pytest.raises(TrustError) as caught:
        _verify(keys, f"{forged}..{signature}")
    assert caught.value.code in {"message.algorithm", "message.malformed"}


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "e30..", "!!!..x"])
def test_garbage_is_refused_as_malformed(keys: Keys, token: str) -> None:
    with pytest.raises(TrustError) as caught:
        _verify(keys, token)
    assert caught.value.code.startswith("message.")


def test_replays_reuse_and_retries_are_told_apart(keys: Keys, session: Session) -> None:
    """First time: new. A retry (later attempt, same bytes): not new. The same attempt again:
    a replay. The same id with other bytes: refused."""
    signer = keys.make("az-node")
    first = _verify(keys, _sign(signer))
    assert record_message(session, first, recorded_at=T0) is True  # type: ignore[arg-type]
    again = _verify(keys, _sign(signer))
    _refused("message.replayed", record_message, session, again, recorded_at=T0)
    retry_at = T0 + timedelta(minutes=1)
    retry = _verify(keys, _sign(signer, at=retry_at), at=retry_at)
    assert record_message(session, retry, recorded_at=retry_at) is False  # type: ignore[arg-type]
    other_at = T0 + timedelta(minutes=2)
    other = _verify(keys, _sign(signer, body=BODY + b" ", at=other_at), BODY + b" ", at=other_at)
    _refused("message.id-reused", record_message, session, other, recorded_at=other_at)
