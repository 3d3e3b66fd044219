"""Signatures on node-to-node messages: a detached JWS over the exact bytes sent.

Form: JWS compact serialisation (RFC 7515) with a detached payload (its
appendix F) and ``b64: false`` (RFC 7797), so the signature covers the body's
bytes as they travel, with no base64 copy. The protected header binds

    kid        the signing key (SHA-256 of its SubjectPublicKeyInfo)
    gl.sender  the sending node
    gl.mid     the message id, the same on every retry
    gl.at      the time of *this* sending attempt (RFC 3339, UTC)

Why JWS rather than RFC 9421 HTTP Message Signatures: a message is pushed
over HTTP, pulled by a polling partner later, kept in the outbox and exported
in evidence bundles. A JWS is one string beside the bytes and verifies
anywhere; an HTTP message signature covers request components (method, path,
headers) that a pulled or archived message no longer has.

Each retry is signed afresh with its own ``gl.at`` and the same ``gl.mid``, so
the freshness window holds after a long outage. The receiver refuses: a key
that is not the claimed sender's or not valid when it records the message, an
attempt time outside the window, the same attempt seen again (a replay), and
a message id seen before with other bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.registry import HeaderParameter
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from greenlane.store.models import SeenMessage
from greenlane.trust.keys import KeyLookup, OwnerKind, RegisteredKey, key_id
from greenlane.trust.signers import Algorithm, Signer, TrustError, algorithm_for

DEFAULT_WINDOW = timedelta(minutes=5)
_ALGORITHMS = [a.value for a in Algorithm]


def _is_str(value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")


_REGISTRY = jws.JWSRegistry(
    header_registry={
        "gl.sender": HeaderParameter("Sending node", _is_str, required=True),
        "gl.mid": HeaderParameter("Message id, the same on every retry", _is_str, required=True),
        "gl.at": HeaderParameter("Time of this sending attempt", _is_str, required=True),
    },
    algorithms=_ALGORITHMS,
)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sign_message(
    signer: Signer, *, sender: str, message_id: str, body: bytes, attempt_at: datetime
) -> str:
    """A detached JWS over ``body`` for one sending attempt.

    Made here rather than by the JOSE library because the private key may be
    on a token: only the signing input goes to the :class:`Signer`.
    """
    header = {
        "alg": signer.algorithm.value,
        "b64": False,
        "crit": ["b64"],
        "kid": key_id(signer.certificate),
        "gl.sender": sender,
        "gl.mid": message_id,
        "gl.at": _time(attempt_at),
    }
    protected = _b64(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
    signature = signer.sign(protected + b"." + body)
    return (protected + b".." + _b64(signature)).decode("ascii")


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    sender: str
    message_id: str
    attempt_at: datetime
    key_id: str
    digest: str
    """SHA-256 of the body, hex: what a message id is bound to."""


def _header(token: str) -> dict[str, Any]:
    try:
        protected, empty, _ = token.split(".")
        if empty:
            raise ValueError("the payload is not detached")
        header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
        if not isinstance(header, dict):
            raise ValueError("the header is not an object")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TrustError(f"message signature unreadable: {exc}", code="message.malformed") from exc
    return header


def verify_message(
    token: str,
    body: bytes,
    *,
    keys: KeyLookup,
    recorded_at: datetime,
    claimed_sender: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> VerifiedMessage:
    """Check a message's signature, signer and freshness; raise TrustError with the reason."""
    header = _header(token)
    if header.get("alg") not in _ALGORITHMS:
        raise TrustError(
            f"signature algorithm {header.get('alg')!r} is not allowed ({', '.join(_ALGORITHMS)})",
            code="message.algorithm",
        )
    if header.get("b64") is not False or header.get("crit") != ["b64"]:
        raise TrustError(
            "the signature must be over the raw bytes (b64: false)", code="message.malformed"
        )
    kid, sender = header.get("kid"), header.get("gl.sender")
    if claimed_sender is not None and sender != claimed_sender:
        raise TrustError(
            f"signed as {sender!r}, delivered as {claimed_sender!r}", code="message.wrong-sender"
        )
    key = keys.key(kid) if isinstance(kid, str) else None
    if key is None:
        raise TrustError(f"signed by an unknown key {str(kid)[:16]!r}", code="message.unknown-key")
    if key.owner_kind is not OwnerKind.NODE or key.owner != sender:
        raise TrustError(
            f"key {key.key_id[:16]} belongs to {key.owner_kind.value} {key.owner}, not to {sender}",
            code="message.wrong-sender",
        )
    refusal = key.refusal_at(recorded_at)
    if refusal is not None:
        code = "message.key-revoked" if key.revoked_at is not None else "message.key-not-valid"
        raise TrustError(refusal, code=code)
    try:
        jws.deserialize_compact(
            token,
            _jose_key(key),
            payload=body,
            algorithms=[algorithm_for(key.certificate.public_key()).value],
            registry=_REGISTRY,
        )
    except (JoseError, ValueError) as exc:
        raise TrustError(
            "the signature does not match the message bytes", code="message.bad-signature"
        ) from exc
    attempt_at = _attempt_time(header.get("gl.at"))
    if abs(attempt_at - recorded_at) > window:
        raise TrustError(
            f"attempt time {_time(attempt_at)} is more than {int(window.total_seconds())} s "
            f"from the time received {_time(recorded_at)}",
            code="message.time-window",
        )
    return VerifiedMessage(
        sender=sender,
        message_id=str(header["gl.mid"]),
        attempt_at=attempt_at,
        key_id=key.key_id,
        digest=hashlib.sha256(body).hexdigest(),
    )


def _attempt_time(value: object) -> datetime:
    try:
        assert isinstance(value, str)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert parsed.tzinfo is not None
    except (AssertionError, ValueError) as exc:
        raise TrustError(
            f"attempt time {value!r} is not a zoned time", code="message.malformed"
        ) from exc
    return parsed.astimezone(UTC)


def _jose_key(key: RegisteredKey) -> ECKey | RSAKey:
    """The key in the JOSE library's form, made once: importing costs more than verifying."""
    return _jose_key_for(key.key_id, key.certificate)


@lru_cache(maxsize=256)
def _jose_key_for(kid: str, certificate: x509.Certificate) -> ECKey | RSAKey:
    pem = certificate.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    if algorithm_for(certificate.public_key()) is Algorithm.ES256:
        return ECKey.import_key(pem)
    return RSAKey.import_key(pem)


def record_message(session: Session, message: VerifiedMessage, *, recorded_at: datetime) -> bool:
    """Remember a verified message; True the first time, False for a retry of it.

    A retry carries the same id and bytes with a later attempt time. The same
    attempt again is a replay; the same id with other bytes is refused.
    """
    key = (SeenMessage.sender == message.sender) & (SeenMessage.message_id == message.message_id)
    seen = session.execute(
        select(SeenMessage.digest, SeenMessage.last_attempt_at).where(key)
    ).first()
    if seen is None:
        session.execute(
            insert(SeenMessage).values(
                sender=message.sender,
                message_id=message.message_id,
                digest=message.digest,
                first_at=recorded_at,
                last_attempt_at=message.attempt_at,
            )
        )
        return True
    digest, last_attempt_at = seen
    if digest != message.digest:
        raise TrustError(
            f"message id {message.message_id!r} from {message.sender} was used before "
            "for other content",
            code="message.id-reused",
        )
    if message.attempt_at <= last_attempt_at:
        raise TrustError(
            f"attempt {_time(message.attempt_at)} of message {message.message_id!r} "
            "was already received (a replay)",
            code="message.replayed",
        )
    session.execute(update(SeenMessage).where(key).values(last_attempt_at=message.attempt_at))
    return False
