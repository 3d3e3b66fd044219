"""Signatures and the evidence log, each beside the bare library doing the same work."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from bench.corpus import CORPUS
from greenlane.store import migrate
from greenlane.store.engine import make_engine
from greenlane.trust import evidence, pki, xmldsig
from greenlane.trust.keys import KeyState, OwnerKind, RegisteredKey, key_id
from greenlane.trust.messages import sign_message, verify_message
from greenlane.trust.signers import SoftwareSigner

ROUND_SECONDS = 1.0
ROUNDS = 3


def _rate(fn: Callable[[], object]) -> float:
    """Calls per second: the median of a few rounds of about a second each."""
    fn()
    rates = []
    for _ in range(ROUNDS):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < ROUND_SECONDS:
            for _ in range(20):
                fn()
            count += 20
        rates.append(count / elapsed)
    return statistics.median(rates)


def _line(
    name: str, value: float, baseline: str, baseline_value: float, unit: str
) -> dict[str, Any]:
    return {
        "name": name,
        "unit": unit,
        "value": round(value),
        "baseline": baseline,
        "baseline_value": round(baseline_value),
        "ratio": round(value / baseline_value, 3),
    }


class _Keys:
    def __init__(self, signer: SoftwareSigner, owner: str, kind: OwnerKind) -> None:
        now = datetime.now(UTC)
        self.registered = RegisteredKey(
            key_id=key_id(signer.certificate),
            country="AZ",
            owner=owner,
            owner_kind=kind,
            roles=frozenset(),
            certificate=signer.certificate,
            state=KeyState.ACTIVE,
            published_at=now - timedelta(days=1),
            activated_at=now - timedelta(days=1),
        )

    def key(self, kid: str) -> RegisteredKey | None:
        return self.registered if kid == self.registered.key_id else None


def _signer(kind: OwnerKind, owner: str) -> tuple[SoftwareSigner, ec.EllipticCurvePrivateKey]:
    root_key = pki.generate_key()
    root = pki.create_root("AZ", "AZ", root_key)
    private = pki.generate_key()
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    certificate = pki.issue(
        root_key, root, private.public_key(), pki.Owner("AZ", kind, owner, owner)
    )
    return SoftwareSigner.from_key(private, certificate), private


def messages() -> list[dict[str, Any]]:
    """Detached JWS on a 6 KB message (ES256), against ECDSA P-256 over the same bytes."""
    signer, private = _signer(OwnerKind.NODE, "az-node")
    keys = _Keys(signer, "az-node", OwnerKind.NODE)
    body = (CORPUS / "ephyto/agrocalidad/491412333BO.xml").read_bytes()[:6000]
    now = datetime.now(UTC)
    token = sign_message(signer, sender="az-node", message_id="m", body=body, attempt_at=now)
    public = private.public_key()
    raw_signature = private.sign(body, ec.ECDSA(hashes.SHA256()))

    def sign() -> object:
        return sign_message(signer, sender="az-node", message_id="m", body=body, attempt_at=now)

    def verify() -> object:
        return verify_message(token, body, keys=keys, recorded_at=now, claimed_sender="az-node")

    bare_sign = _rate(lambda: private.sign(body, ec.ECDSA(hashes.SHA256())))
    bare_verify = _rate(lambda: public.verify(raw_signature, body, ec.ECDSA(hashes.SHA256())))
    return [
        _line(
            "message signatures made (detached JWS, ES256, 6 KB)",
            _rate(sign),
            "cryptography ECDSA P-256 sign, same bytes",
            bare_sign,
            "signatures/s",
        ),
        _line(
            "message signatures verified (JWS + key, sender and window checks)",
            _rate(verify),
            "cryptography ECDSA P-256 verify, same bytes",
            bare_verify,
            "signatures/s",
        ),
    ]


def documents() -> list[dict[str, Any]]:
    """XML-DSig enveloped signatures on the 14 KB INTERCOM certificate, made and verified."""
    signer, private = _signer(OwnerKind.AGENCY, "az-fsa")
    data = (CORPUS / "ephyto/intercom/SPSCertificate.xml").read_bytes()
    signed = xmldsig.sign_enveloped(data, signer)
    public = private.public_key()
    raw_signature = private.sign(data, ec.ECDSA(hashes.SHA256()))

    def verify() -> object:
        result = xmldsig.verify_enveloped(signed)
        assert result.intact
        return result

    bare_sign = _rate(lambda: private.sign(data, ec.ECDSA(hashes.SHA256())))
    bare_verify = _rate(lambda: public.verify(raw_signature, data, ec.ECDSA(hashes.SHA256())))
    return [
        _line(
            "document signatures made (XML-DSig enveloped, ES256, 14 KB)",
            _rate(lambda: xmldsig.sign_enveloped(data, signer)),
            "cryptography ECDSA P-256 sign of the document bytes",
            bare_sign,
            "signatures/s",
        ),
        _line(
            "document signatures verified (parse, C14N, digest, signature)",
            _rate(verify),
            "cryptography ECDSA P-256 verify of the document bytes",
            bare_verify,
            "signatures/s",
        ),
    ]


def evidence_appends() -> list[dict[str, Any]]:
    """Appends to the log on the embedded SQLite, committed in batches of 100 and one by one."""
    results = []
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
        migrate.upgrade(engine)
        for batch in (100, 1):
            event = evidence.Event(
                evidence.Kind.DOCUMENT_RECEIVED, "0" * 64, {"document": "0" * 64}
            )
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < 3 * ROUND_SECONDS:
                with Session(engine) as session, session.begin():
                    evidence.append(session, [event] * batch, at=datetime.now(UTC))
                count += batch
            rate = count / (time.perf_counter() - started)
            how = "one by one" if batch == 1 else f"in batches of {batch}"
            results.append(
                {
                    "name": f"evidence log appends, committed {how} (SQLite)",
                    "unit": "entries/s",
                    "value": round(rate),
                }
            )
        engine.dispose()
    return results


def measure() -> list[dict[str, Any]]:
    return [*documents(), *messages(), *evidence_appends()]
