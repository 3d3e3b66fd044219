"""Registry updates: how a key change reaches the partner country.

An update is canonical JSON (RFC 8785) listing key changes, numbered per
country, and signed by that country's root CA, never by the node or agency
key it changes: a stolen node key cannot publish its own successor or undo
its revocation. The partner verifies against the root certificate pinned from
the corridor file and applies updates strictly in sequence.

    {"type": "greenlane.registry-update", "country": "AZ", "sequence": 3,
     "issued_at": "2026-12-01T10:00:00Z",
     "changes": [{"op": "publish", "key_id": "…", "owner_kind": "node",
                  "owner": "az-node", "certificate": "-----BEGIN…", "at": "…"},
                 {"op": "activate", "key_id": "…", "at": "…"},
                 {"op": "retire", "key_id": "…", "at": "…"},
                 {"op": "revoke", "key_id": "…", "at": "…", "reason": "…"}]}

Times on the receiving side: a key is known from when the update was
recorded there; a revocation takes effect at the earlier of its stated time
and that moment, so a compromise reported late still reaches back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import rfc8785
from cryptography import x509
from sqlalchemy.orm import Session

from greenlane.store.models import Country, RegistryUpdate, StoredKey
from greenlane.trust import evidence, pki
from greenlane.trust.keys import KeyState, OwnerKind, key_id
from greenlane.trust.registry import participant, root_certificate
from greenlane.trust.signers import Signer, TrustError, algorithm_for, verify_raw

TYPE = "greenlane.registry-update"
OPS = ("publish", "activate", "retire", "revoke")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a time must be a string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time must have a zone")
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Change:
    op: str
    key_id: str
    at: datetime
    owner_kind: OwnerKind | None = None
    owner: str | None = None
    certificate: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "key_id": self.key_id, "at": _time(self.at)}
        if self.op == "publish":
            assert self.owner_kind is not None
            out |= {
                "owner_kind": self.owner_kind.value,
                "owner": self.owner,
                "certificate": self.certificate,
            }
        if self.op == "revoke":
            out["reason"] = self.reason or ""
        return out


def issue_update(
    session: Session, country: str, changes: list[Change], root: Signer, *, now: datetime
) -> RegistryUpdate:
    """Record the next update of our own country, signed by its root CA."""
    row = session.get(Country, country)
    if row is None:
        raise TrustError(f"country {country} is not in the corridor", code="trust.unknown-country")
    if key_id(root.certificate) != key_id(root_certificate(session, country)):
        raise TrustError(
            f"registry updates of {country} are signed by its root CA only",
            code="trust.update-not-by-root",
        )
    sequence = row.registry_sequence + 1
    body = rfc8785.dumps(
        {
            "type": TYPE,
            "country": country,
            "sequence": sequence,
            "issued_at": _time(now),
            "changes": [c.to_json() for c in changes],
        }
    )
    update = RegistryUpdate(
        country=country,
        sequence=sequence,
        body=body,
        signature=root.sign(body),
        recorded_at=now,
    )
    row.registry_sequence = sequence
    session.add(update)
    _log(session, update, "issued", now)
    session.flush()
    return update


def _log(session: Session, update: RegistryUpdate, direction: str, at: datetime) -> None:
    """Every key change, ours or the partner's, goes into the evidence log."""
    changes = [{"op": c["op"], "key_id": c["key_id"]} for c in json.loads(update.body)["changes"]]
    evidence.append(
        session,
        [
            evidence.Event(
                evidence.Kind.KEY_CHANGED,
                f"registry:{update.country}#{update.sequence}",
                {
                    "direction": direction,
                    "country": update.country,
                    "sequence": update.sequence,
                    "update_sha256": hashlib.sha256(update.body).hexdigest(),
                    "changes": changes,
                },
            )
        ],
        at=at,
    )


def apply_update(
    session: Session, body: bytes, signature: bytes, *, recorded_at: datetime
) -> RegistryUpdate:
    """Verify a partner's update against its pinned root and apply it; refuse anything else.

    Nothing is written unless the whole update is good (the caller's transaction
    is left untouched on refusal: changes are checked before any is applied).
    """
    document = _decode(body)
    country_code = document["country"]
    root = root_certificate(session, country_code)
    if not verify_raw(root, algorithm_for(root.public_key()), signature, body):
        raise TrustError(
            f"registry update for {country_code} is not signed by its root CA",
            code="trust.update-not-by-root",
        )
    country = session.get(Country, country_code)
    assert country is not None
    sequence = document["sequence"]
    if sequence <= country.registry_sequence:
        raise TrustError(
            f"registry update {country_code}#{sequence} was already applied",
            code="trust.update-replayed",
        )
    if sequence != country.registry_sequence + 1:
        raise TrustError(
            f"registry update {country_code}#{sequence} arrived before "
            f"#{country.registry_sequence + 1}",
            code="trust.update-out-of-order",
        )
    changes = [_change(c) for c in document["changes"]]
    planned = _plan(session, country_code, root, changes, recorded_at)
    for apply in planned:
        apply()
    country.registry_sequence = sequence
    update = RegistryUpdate(
        country=country_code,
        sequence=sequence,
        body=body,
        signature=signature,
        recorded_at=recorded_at,
    )
    session.add(update)
    _log(session, update, "received", recorded_at)
    session.flush()
    return update


def _decode(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
        if (
            not isinstance(document, dict)
            or document.get("type") != TYPE
            or not isinstance(document.get("country"), str)
            or not isinstance(document.get("sequence"), int)
            or not isinstance(document.get("changes"), list)
        ):
            raise ValueError("not a registry update")
        if rfc8785.dumps(document) != body:
            raise ValueError("not in canonical form (RFC 8785)")
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(
            f"registry update unreadable: {exc}", code="trust.update-malformed"
        ) from exc
    return document


def _change(data: object) -> Change:
    try:
        if not isinstance(data, dict) or data.get("op") not in OPS:
            raise ValueError("unknown change")
        kind = data.get("owner_kind")
        return Change(
            op=data["op"],
            key_id=str(data["key_id"]),
            at=_parse_time(data["at"]),
            owner_kind=OwnerKind(kind) if kind is not None else None,
            owner=data.get("owner"),
            certificate=data.get("certificate"),
            reason=data.get("reason"),
        )
    except (KeyError, ValueError) as exc:
        raise TrustError(
            f"registry update has a bad change: {exc}", code="trust.update-malformed"
        ) from exc


def _plan(
    session: Session,
    country: str,
    root: x509.Certificate,
    changes: list[Change],
    recorded_at: datetime,
) -> list[Callable[[], None]]:
    """Check every change first; return the writes to make once all are known good."""
    planned: list[Callable[[], None]] = []
    published: dict[str, StoredKey] = {}
    states: dict[str, KeyState] = {}
    for change in changes:
        if change.op == "publish":
            row = published[change.key_id] = _published(session, country, root, change, recorded_at)
            states[change.key_id] = KeyState.PENDING
            planned.append(partial(session.add, row))
            continue
        existing = published.get(change.key_id) or session.get(StoredKey, change.key_id)
        if existing is None or existing.country != country:
            raise TrustError(
                f"registry update of {country} changes key {change.key_id[:16]}, "
                "which is not one of its keys",
                code="trust.update-foreign-key",
            )
        state = states.get(change.key_id, KeyState(existing.state))
        states[change.key_id] = next_state(change.key_id, state, change.op)
        at = min(change.at, recorded_at)
        planned.append(partial(apply_transition, existing, change.op, at, change.reason))
    return planned


def _published(
    session: Session, country: str, root: x509.Certificate, change: Change, recorded_at: datetime
) -> StoredKey:
    if change.certificate is None or change.owner is None or change.owner_kind is None:
        raise TrustError(
            "a published key needs its owner and certificate", code="trust.update-malformed"
        )
    certificate = x509.load_pem_x509_certificate(change.certificate.encode("ascii"))
    pki.check_issued_by(certificate, root)
    if key_id(certificate) != change.key_id:
        raise TrustError(
            "published key id does not match its certificate", code="trust.update-malformed"
        )
    owner = participant(session, change.owner)
    if owner is None or owner.country != country or owner.kind is not change.owner_kind:
        raise TrustError(
            f"{change.owner} is not a {change.owner_kind.value} of {country}",
            code="trust.update-foreign-key",
        )
    if pki.owner_uri(certificate) != pki.Owner(country, change.owner_kind, change.owner, "").uri:
        raise TrustError(
            f"the certificate published for {change.owner} names another owner",
            code="trust.update-foreign-key",
        )
    if session.get(StoredKey, change.key_id) is not None:
        raise TrustError(
            f"key {change.key_id[:16]} is already registered", code="trust.update-replayed"
        )
    return StoredKey(
        key_id=change.key_id,
        country=country,
        owner_kind=change.owner_kind.value,
        owner_id=change.owner,
        certificate=change.certificate,
        algorithm=algorithm_for(certificate.public_key()).value,
        state=KeyState.PENDING.value,
        published_at=recorded_at,
    )


def next_state(key: str, state: KeyState, op: str) -> KeyState:
    """The state after one lifecycle step; the steps the lifecycle forbids are refused."""
    if state is KeyState.REVOKED:
        raise TrustError(f"key {key[:16]} is revoked", code="trust.key-revoked")
    if op == "revoke":
        return KeyState.REVOKED
    expected, after = {
        "activate": (KeyState.PENDING, KeyState.ACTIVE),
        "retire": (KeyState.ACTIVE, KeyState.RETIRED),
    }[op]
    if state is not expected:
        raise TrustError(f"key {key[:16]} is {state}, not {expected}", code="trust.key-state")
    return after


def apply_transition(row: StoredKey, op: str, at: datetime, reason: str | None = None) -> None:
    """One lifecycle step on a key row, stamped with its time."""
    row.state = next_state(row.key_id, KeyState(row.state), op).value
    if op == "activate":
        row.activated_at = at
    elif op == "retire":
        row.retired_at = at
    else:
        row.revoked_at, row.revocation_reason = at, reason
