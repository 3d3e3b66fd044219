"""The evidence log: every event appended to a Merkle log, checkpoints both nodes sign.

An entry is canonical JSON (RFC 8785) of ``{seq, kind, at, subject, data}``:
digests and references only. Personal data lives in ``personal_data`` and the
entry carries an HMAC commitment to it (:mod:`greenlane.trust.personal`), so
erasing a person after the retention period leaves the log intact.

Entries are leaves of an RFC 9162 Merkle tree in ``seq`` order. A checkpoint
``{log, size, root, at}`` is signed by this node's key and sent to the partner,
who countersigns it; both keep it. :func:`verify_log` finds an entry changed,
deleted, reordered or inserted, and a history rewritten since the last
countersigned checkpoint (a rewrite would need the partner's key).

Appends go only through :func:`append`; on both databases triggers refuse
UPDATE and DELETE of entries. Appends are batched: one call takes many
events, reads the frontier once and writes it once. The caller's transaction
holds the log's single state row, so appenders never interleave.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import select
from sqlalchemy.orm import Session

from greenlane.store.models import EvidenceCheckpoint, EvidenceEntry, EvidenceState
from greenlane.trust import merkle
from greenlane.trust.keys import KeyLookup, OwnerKind, key_id
from greenlane.trust.signers import Signer, TrustError, algorithm_for, verify_raw

ENTRY_TYPE = "greenlane.evidence"
CHECKPOINT_TYPE = "greenlane.checkpoint"
_STATE_ROW = 1


class Kind:
    """The kinds of event the log records."""

    DOCUMENT_SENT = "document.sent"
    DOCUMENT_RECEIVED = "document.received"
    RECEIPT = "receipt"
    STATUS_CHANGED = "status.changed"
    DECISION = "decision"
    KEY_CHANGED = "key.changed"
    CONFIGURATION_CHANGED = "configuration.changed"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """Something to log: a kind, what it is about, and its details (digests and references)."""

    kind: str
    subject: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def entry_body(seq: int, event: Event, at: datetime) -> bytes:
    return rfc8785.dumps(
        {
            "type": ENTRY_TYPE,
            "seq": seq,
            "kind": event.kind,
            "at": _time(at),
            "subject": event.subject,
            "data": dict(event.data),
        }
    )


def _state(session: Session) -> EvidenceState:
    query = select(EvidenceState).where(EvidenceState.id == _STATE_ROW).with_for_update()
    state = session.scalar(query)
    if state is None:
        state = EvidenceState(id=_STATE_ROW, size=0, frontier=merkle.Frontier().to_bytes())
        session.add(state)
        session.flush()
    return state


def append(session: Session, events: Iterable[Event], *, at: datetime) -> list[EvidenceEntry]:
    """Append events in order, in the caller's transaction; the only way into the log."""
    state = _state(session)
    frontier = merkle.Frontier.from_bytes(state.frontier)
    entries = []
    for event in events:
        seq = frontier.size
        body = entry_body(seq, event, at)
        leaf = merkle.leaf_hash(body)
        frontier.append(leaf)
        entries.append(
            EvidenceEntry(
                seq=seq,
                kind=event.kind,
                recorded_at=at,
                subject=event.subject,
                body=body,
                leaf_hash=leaf,
            )
        )
    session.add_all(entries)
    state.size, state.frontier = frontier.size, frontier.to_bytes()
    session.flush()
    return entries


def size_and_root(session: Session) -> tuple[int, bytes]:
    state = session.get(EvidenceState, _STATE_ROW)
    if state is None:
        return 0, merkle.EMPTY_ROOT
    frontier = merkle.Frontier.from_bytes(state.frontier)
    return frontier.size, frontier.root()


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_body(log: str, size: int, root: bytes, at: datetime) -> bytes:
    return rfc8785.dumps(
        {"type": CHECKPOINT_TYPE, "log": log, "size": size, "root": root.hex(), "at": _time(at)}
    )


def make_checkpoint(
    session: Session, log: str, signer: Signer, *, at: datetime
) -> EvidenceCheckpoint:
    """Sign this node's log as it stands; the row waits for the partner's countersignature."""
    size, root = size_and_root(session)
    existing = session.scalar(
        select(EvidenceCheckpoint).where(
            EvidenceCheckpoint.log == log, EvidenceCheckpoint.size == size
        )
    )
    if existing is not None:
        return existing
    body = checkpoint_body(log, size, root, at)
    row = EvidenceCheckpoint(
        log=log,
        size=size,
        root=root,
        body=body,
        key_id=key_id(signer.certificate),
        signature=signer.sign(body),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class CheckpointView:
    log: str
    size: int
    root: bytes
    at: datetime


def read_checkpoint(body: bytes) -> CheckpointView:
    try:
        data = json.loads(body)
        if data.get("type") != CHECKPOINT_TYPE or rfc8785.dumps(data) != body:
            raise ValueError("not a canonical checkpoint")
        root = bytes.fromhex(data["root"])
        if len(root) != 32 or not isinstance(data["size"], int) or data["size"] < 0:
            raise ValueError("bad size or root")
        at = datetime.fromisoformat(data["at"].replace("Z", "+00:00"))
        return CheckpointView(str(data["log"]), data["size"], root, at)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrustError(f"checkpoint unreadable: {exc}", code="evidence.malformed") from exc


def check_checkpoint_signature(
    body: bytes,
    signature: bytes,
    signed_key: str,
    keys: KeyLookup,
    signer_node: str,
    recorded_at: datetime,
) -> None:
    """Refuse a checkpoint signature not made by ``signer_node``'s key valid at ``recorded_at``."""
    key = keys.key(signed_key)
    if key is None or key.owner_kind is not OwnerKind.NODE or key.owner != signer_node:
        raise TrustError(
            f"checkpoint signed by {signed_key[:16]}, not a key of node {signer_node}",
            code="evidence.bad-checkpoint",
        )
    reason = key.refusal_at(recorded_at)
    if reason is not None:
        raise TrustError(f"checkpoint key: {reason}", code="evidence.bad-checkpoint")
    if not verify_raw(
        key.certificate, algorithm_for(key.certificate.public_key()), signature, body
    ):
        raise TrustError("checkpoint signature does not verify", code="evidence.bad-checkpoint")


def countersign(
    session: Session,
    body: bytes,
    signature: bytes,
    signed_key: str,
    *,
    keys: KeyLookup,
    partner_node: str,
    signer: Signer,
    me: str,
    at: datetime,
    proof: list[bytes] | None = None,
) -> tuple[EvidenceCheckpoint, bytes]:
    """Keep the partner's checkpoint and countersign it; a rewritten history is refused.

    The partner's log may only grow: a checkpoint smaller than one already
    kept, or of the same size with another root, is refused; a larger one must
    come with an RFC 9162 consistency ``proof`` from the largest checkpoint
    kept (:func:`consistency_proof` on the partner's side), since this node
    never sees the partner's entries, only their roots.
    """
    view = read_checkpoint(body)
    if view.log != partner_node:
        raise TrustError(
            f"checkpoint of {view.log}, expected {partner_node}", code="evidence.bad-checkpoint"
        )
    check_checkpoint_signature(body, signature, signed_key, keys, partner_node, at)
    kept = list(
        session.scalars(select(EvidenceCheckpoint).where(EvidenceCheckpoint.log == partner_node))
    )
    for earlier in kept:
        if earlier.size == view.size and earlier.root != view.root:
            raise TrustError(
                f"{partner_node} signed two roots for size {view.size}",
                code="evidence.history-rewritten",
            )
        if earlier.size > view.size:
            raise TrustError(
                f"{partner_node} checkpoint at {view.size} after one at {earlier.size}",
                code="evidence.history-rewritten",
            )
    latest = max(kept, key=lambda k: k.size, default=None)
    if latest is not None and latest.size < view.size:
        consistent = merkle.verify_consistency(
            latest.size, view.size, bytes(latest.root), view.root, proof or []
        )
        if not consistent:
            raise TrustError(
                f"{partner_node}'s log at {view.size} does not extend its log at {latest.size}",
                code="evidence.history-rewritten",
            )
    counter = signer.sign(body)
    row = next((k for k in kept if k.size == view.size), None)
    if row is None:
        row = EvidenceCheckpoint(
            log=partner_node,
            size=view.size,
            root=view.root,
            body=body,
            key_id=signed_key,
            signature=signature,
        )
        session.add(row)
    row.countersigner, row.counter_key_id = me, key_id(signer.certificate)
    row.countersignature, row.countersigned_at = counter, at
    session.flush()
    return row, counter


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """The proof that our log at ``new_size`` extends it at ``old_size``, for the partner."""
    return merkle.consistency_proof(old_size, new_size, leaf_hashes(session, new_size))


def record_countersignature(
    session: Session,
    checkpoint: EvidenceCheckpoint,
    countersignature: bytes,
    counter_key: str,
    *,
    keys: KeyLookup,
    partner_node: str,
    at: datetime,
) -> None:
    """Keep the partner's countersignature on one of our checkpoints, once it verifies."""
    check_checkpoint_signature(
        checkpoint.body, countersignature, counter_key, keys, partner_node, at
    )
    checkpoint.countersigner, checkpoint.counter_key_id = partner_node, counter_key
    checkpoint.countersignature, checkpoint.countersigned_at = countersignature, at
    session.flush()


# --- verification ----------------------------------------------------------------------------


@dataclass(slots=True)
class LogReport:
    size: int = 0
    checkpoints: int = 0
    countersigned: int = 0
    problems: list[tuple[int | None, str, str]] = field(default_factory=list)
    """(entry seq or None, code, message), in the order found."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken(self) -> int | None:
        return next((seq for seq, _, _ in self.problems if seq is not None), None)


def _entries(session: Session) -> Iterator[EvidenceEntry]:
    query = select(EvidenceEntry).order_by(EvidenceEntry.seq).execution_options(yield_per=1000)
    yield from session.scalars(query)


def verify_log(
    session: Session, log: str, keys: KeyLookup, partner: str | None = None
) -> LogReport:
    """Recompute the log from its entries and hold it against every checkpoint kept.

    Finds: an entry changed (its hash or its own ``seq`` field no longer match),
    deleted (a gap), inserted or reordered (``seq`` out of place, or roots that
    no longer match), and history rewritten consistently (the recomputed root
    at a checkpoint's size differs from what both nodes signed).
    """
    report = LogReport()
    checkpoints = {
        c.size: c
        for c in session.scalars(select(EvidenceCheckpoint).where(EvidenceCheckpoint.log == log))
    }
    frontier = merkle.Frontier()
    expected = 0

    def at_size() -> None:
        point = checkpoints.get(frontier.size)
        if point is not None:
            _check_point(point, frontier.root(), keys, log, partner, report)

    at_size()
    for entry in _entries(session):
        if entry.seq != expected:
            report.problems.append(
                (
                    expected,
                    "evidence.entry-missing",
                    f"entries {expected} to {entry.seq - 1} are missing",
                )
            )
            expected = entry.seq
        body = _raw(entry.body)
        problem = _entry_problem(entry.seq, body, _raw(entry.leaf_hash))
        if problem is not None:
            report.problems.append((entry.seq, *problem))
        frontier.append(merkle.leaf_hash(body))
        expected += 1
        at_size()
    report.size = frontier.size
    state = session.get(EvidenceState, _STATE_ROW)
    if state is not None:
        stored = merkle.Frontier.from_bytes(state.frontier)
        if stored.size != frontier.size or stored.root() != frontier.root():
            report.problems.append(
                (None, "evidence.state-mismatch", "the stored log head is not the log's own")
            )
    for size in sorted(checkpoints):
        if size > frontier.size:
            report.problems.append(
                (
                    frontier.size,
                    "evidence.entry-missing",
                    f"a checkpoint covers {size} entries; the log has {frontier.size}",
                )
            )
    return report


def _raw(value: object) -> bytes:
    """A column as the bytes stored: edited with plain SQL, a BLOB may come back as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _entry_problem(seq: int, body: bytes, stored_hash: bytes) -> tuple[str, str] | None:
    """What is wrong with one entry on its own: changed, or moved from another place."""
    if merkle.leaf_hash(body) != stored_hash:
        return "evidence.entry-modified", f"entry {seq} was changed after it was written"
    try:
        data = json.loads(body)
        own = data.get("seq")
        canonical = rfc8785.dumps(data) == body
    except (ValueError, AttributeError, rfc8785.CanonicalizationError):
        return "evidence.entry-modified", f"entry {seq} is not the JSON it was"
    if own != seq:
        return "evidence.entry-moved", f"entry {seq} holds the entry written as {own}"
    if not canonical:
        return "evidence.entry-modified", f"entry {seq} is not in canonical form"
    return None


def _check_point(
    point: EvidenceCheckpoint,
    root: bytes,
    keys: KeyLookup,
    log: str,
    partner: str | None,
    report: LogReport,
) -> None:
    report.checkpoints += 1
    seq = point.size - 1 if point.size else None
    view = read_checkpoint(point.body)
    if view.size != point.size or view.root != point.root:
        report.problems.append(
            (
                seq,
                "evidence.bad-checkpoint",
                f"checkpoint {point.size} row differs from what was signed",
            )
        )
        return
    try:
        check_checkpoint_signature(point.body, point.signature, point.key_id, keys, log, view.at)
    except TrustError as exc:
        report.problems.append((seq, exc.code, exc.message))
        return
    if point.countersignature is not None and point.counter_key_id is not None:
        try:
            check_checkpoint_signature(
                point.body,
                point.countersignature,
                point.counter_key_id,
                keys,
                point.countersigner or partner or "",
                point.countersigned_at or view.at,
            )
            report.countersigned += 1
        except TrustError as exc:
            report.problems.append((seq, exc.code, exc.message))
            return
    if root != point.root:
        report.problems.append(
            (
                seq,
                "evidence.history-rewritten",
                f"the first {point.size} entries no longer give the root signed for them",
            )
        )


# --- proofs ----------------------------------------------------------------------------------


def leaf_hashes(session: Session, size: int | None = None) -> list[bytes]:
    query = select(EvidenceEntry.leaf_hash).order_by(EvidenceEntry.seq)
    if size is not None:
        query = query.where(EvidenceEntry.seq < size)
    return [bytes(h) for h in session.scalars(query)]
