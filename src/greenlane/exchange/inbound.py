"""Receiving an envelope: check, store, then sign the receipt; one path for push and pull.

Two kinds of failure, handled differently (the exchange issue's rule):

- the *envelope* fails (unknown sender, bad or replayed signature, wrong TLS
  identity, oversized, malformed): refused with its code; nothing is stored
  but a line in the security log (logger ``greenlane.security``);
- the *payload* of an authenticated envelope fails (unreadable XML, schema or
  rule errors, an untrusted document signature, a header that does not match
  the document): stored in quarantine with its findings and receipted as
  ``DeliveredNotReadable`` or ``DeliveredWithWarnings``. Never dropped.

The receipt is made and stored in the transaction that stores the envelope,
and signed only after the commit: a sender holding a receipt knows the
envelope survives a crash here. A retry of a stored message (same sender and
message id, same bytes) gets the stored receipt back, signed afresh, and
changes nothing else.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from greenlane.codes import finding
from greenlane.errors import GreenlaneError
from greenlane.exchange import certificates
from greenlane.exchange.context import NodeContext
from greenlane.exchange.envelope import OpenedEnvelope, open_envelope
from greenlane.exchange.receipts import encode_receipt, receipt_for, receipt_message_id
from greenlane.exchange.tracking import CertificateStatus, TrackingState
from greenlane.findings import Finding, has_errors
from greenlane.sps import amend
from greenlane.store.documents import add_document
from greenlane.store.models import InboxMessage
from greenlane.trust import evidence
from greenlane.trust.messages import record_message, sign_message
from greenlane.trust.registry import DatabaseKeys
from greenlane.trust.xmldsig import judge_trust, verify_parsed
from greenlane.validation import validate_bytes

security_log = logging.getLogger("greenlane.security")


class PeerMismatch(GreenlaneError):
    """The TLS client certificate names another node than the envelope's signer."""

    code = "tls.wrong-peer"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver sends back: the stored receipt and a fresh signature of it."""

    receipt: bytes
    token: str
    tracking: TrackingState
    delivery_number: int
    duplicate: bool
    """True when this was a retry of a message already stored."""


def receive(
    ctx: NodeContext,
    data: bytes,
    token: str,
    *,
    tls_peer: str | None = None,
    check_tls_peer: bool = False,
) -> Answer:
    """Receive one envelope; raise GreenlaneError (envelope refused) or return the receipt.

    ``check_tls_peer``: the envelope came over mutual TLS and ``tls_peer`` is the
    node the client certificate names; it must be the envelope's signer.
    """
    (result,) = receive_many(ctx, [(data, token)], tls_peer=tls_peer, check_tls_peer=check_tls_peer)
    if isinstance(result, GreenlaneError):
        raise result
    return result


def receive_many(
    ctx: NodeContext,
    items: list[tuple[bytes, str]],
    *,
    tls_peer: str | None = None,
    check_tls_peer: bool = False,
) -> list[Answer | GreenlaneError]:
    """Receive several envelopes: each is checked on its own, all are stored in one commit.

    Each result is the receipt, or the error that refused that envelope (and
    only it). The checks (signature, envelope, payload) run before the write
    transaction, so the database's write lock is held only while storing.
    """
    now = ctx.clock()
    results: list[GreenlaneError | Checked] = []
    with ctx.reads() as session:
        for data, token in items:
            try:
                results.append(_check(ctx, session, data, token, tls_peer, check_tls_peer, now))
            except GreenlaneError as refused:
                _refused(refused, data, tls_peer)
                results.append(refused)
    checked = [r for r in results if isinstance(r, Checked)]
    stored = iter(_store_all(ctx, checked, now) if checked else [])
    with ctx.reads() as session:
        signer = ctx.signer(session, ctx.node_id)
    answers: list[Answer | GreenlaneError] = []
    for result in results:
        if not isinstance(result, Checked):
            answers.append(result)
            continue
        done = next(stored)
        if isinstance(done, GreenlaneError):  # a replay or a reused id: refused at storing
            _refused(done, result.data, tls_peer)
            answers.append(done)
            continue
        token = sign_message(
            signer,
            sender=ctx.node_id,
            message_id=receipt_message_id(result.opened.envelope.message_id),
            body=done.receipt,
            attempt_at=ctx.clock(),
        )
        answers.append(
            Answer(done.receipt, token, done.tracking, done.delivery_number, done.duplicate)
        )
    return answers


def _refused(refused: GreenlaneError, data: bytes, tls_peer: str | None) -> None:
    security_log.warning(
        "envelope refused: code=%s tls_peer=%s bytes=%d sha256=%s reason=%s",
        refused.code,
        tls_peer,
        len(data),
        hashlib.sha256(data).hexdigest(),
        refused,
    )


@dataclass(slots=True)
class Stored:
    receipt: bytes
    tracking: TrackingState
    delivery_number: int
    duplicate: bool


@dataclass(slots=True)
class Checked:
    """An envelope that passed every check, with its payload judged; not yet stored."""

    data: bytes
    token: str
    opened: OpenedEnvelope
    readable: bool
    findings: list[Finding]
    facts: amend.CertificateFacts | None


def _check(
    ctx: NodeContext,
    session: Session,
    data: bytes,
    token: str,
    tls_peer: str | None,
    check_tls_peer: bool,
    now: datetime,
) -> Checked:
    opened = open_envelope(
        data,
        token,
        keys=DatabaseKeys(session),
        node_country=ctx.node_country,
        receiver_node=ctx.node_id,
        recorded_at=now,
        max_bytes=ctx.settings.envelope_max_bytes,
        types=ctx.types,
    )
    if check_tls_peer and tls_peer != opened.envelope.sender_node:
        raise PeerMismatch(
            f"the TLS client certificate names {tls_peer or 'no node'}, but the "
            f"envelope is signed by {opened.envelope.sender_node}"
        )
    readable, findings, facts = judge_payload(ctx, session, opened, now)
    return Checked(data, token, opened, readable, findings, facts)


def _store_all(
    ctx: NodeContext, checked: list[Checked], now: datetime
) -> list[Stored | GreenlaneError]:
    """Record and store every checked envelope in one transaction (retried once on a race)."""
    for attempt in range(2):
        try:
            with ctx.sessions() as session, session.begin():
                outcomes: list[Stored | GreenlaneError] = []
                events: list[evidence.Event] = []
                for item in checked:
                    try:
                        first = record_message(session, item.opened.message, recorded_at=now)
                    except GreenlaneError as refused:  # a replay, or an id reused
                        outcomes.append(refused)
                        continue
                    if first:
                        outcomes.append(_store(session, ctx, item, now, events))
                    else:
                        outcomes.append(_stored(session, item.opened))
                if events:
                    evidence.append(session, events, at=now)
            return outcomes
        except IntegrityError:
            # The same message stored by a concurrent request first (PostgreSQL): the
            # second pass finds it and answers with its receipt.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _stored(session: Session, opened: OpenedEnvelope) -> Stored:
    """The stored answer to a message received before: its receipt, unchanged."""
    row = session.scalar(
        select(InboxMessage).where(
            InboxMessage.sender_node == opened.envelope.sender_node,
            InboxMessage.message_id == opened.envelope.message_id,
        )
    )
    if row is None:  # seen but not stored: only if the inbox row was removed by hand
        raise GreenlaneError(
            f"message {opened.envelope.message_id} was seen but is not in the inbox",
            code="internal",
        )
    return Stored(row.receipt, TrackingState(row.state), row.id, duplicate=True)


def _mismatch(what: str, header: str, document: str | None) -> Finding:
    return finding(
        "exchange.header-mismatch",
        f"the envelope says {what} {header!r}, the document {document!r}",
        "/",
    )


def judge_payload(
    ctx: NodeContext, session: Session, opened: OpenedEnvelope, now: datetime
) -> tuple[bool, list[Finding], amend.CertificateFacts | None]:
    """Read, validate and check the signature of a payload: (readable, findings, facts)."""
    envelope = opened.envelope
    result = validate_bytes(opened.payload, f"{envelope.message_id}.xml", ctx.settings)
    if result.document is None or result.document_type is None:
        return False, list(result.findings), None
    findings = list(result.findings)
    root = result.document.root
    facts = amend.facts(root)
    for what, header, found in (
        ("number", envelope.document_number, facts.number),
        ("type", envelope.document_type, facts.type_code),
        ("status", envelope.document_status, facts.status_code),
        ("export country", envelope.from_country, facts.export_country),
    ):
        if header != found:
            findings.append(_mismatch(what, header, found))
    check = verify_parsed(root)
    role = certificates.role_for(envelope.document_type)
    decision = judge_trust(
        check,
        DatabaseKeys(session),
        recorded_at=now,
        export_country=envelope.from_country,
        role=role,
    )
    findings.extend(check.findings)
    findings.extend(f for f in decision.findings if f not in check.findings)
    return True, findings, facts


def _store(
    session: Session,
    ctx: NodeContext,
    item: Checked,
    now: datetime,
    events: list[evidence.Event],
) -> Stored:
    opened, data, token = item.opened, item.data, item.token
    envelope = opened.envelope
    readable, findings, facts = item.readable, list(item.findings), item.facts
    quarantined = not readable or has_errors(findings)
    document = add_document(
        session,
        raw=opened.payload,
        document_type=envelope.document_type if readable else "unreadable",
        number=envelope.document_number,
        findings=findings,
        received_at=now,
    )
    recorded = None
    if not quarantined:
        recorded = certificates.record(
            session,
            direction="received",
            issuer=envelope.from_country,
            destination=envelope.to_country,
            number=envelope.document_number,
            document_type=envelope.document_type,
            status=CertificateStatus(envelope.document_status),
            document_id=document.id,
            at=now,
            replaces=facts.replaces if facts else None,
        )
        if recorded.duplicate_number:
            findings.append(
                finding(
                    "exchange.duplicate-number",
                    f"certificate {envelope.document_number} arrived before with other "
                    "content; both are kept",
                    "/",
                )
            )
    inbox_id = session.execute(
        insert(InboxMessage)
        .values(
            sender_node=envelope.sender_node,
            message_id=envelope.message_id,
            from_country=envelope.from_country,
            document_type=envelope.document_type,
            document_status=envelope.document_status,
            document_number=envelope.document_number,
            envelope=data,
            envelope_sha256=opened.message.digest,
            token=token,
            document_id=document.id,
            certificate_id=recorded.certificate.id if recorded else None,
            state=TrackingState.PENDING_DELIVERY.value,
            quarantined=quarantined,
            duplicate_number=bool(recorded and recorded.duplicate_number),
            receipt=b"",
            received_at=now,
        )
        .returning(InboxMessage.id)
    ).scalar_one()
    receipt = receipt_for(
        opened, findings=findings, readable=readable, received_at=now, delivery_number=inbox_id
    )
    stored = Stored(encode_receipt(receipt), receipt.tracking, inbox_id, duplicate=False)
    session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id)
        .values(receipt=stored.receipt, state=stored.tracking.value)
    )
    events.extend(
        [
            evidence.Event(
                evidence.Kind.DOCUMENT_RECEIVED,
                document.sha256,
                {
                    "message_id": envelope.message_id,
                    "from": envelope.sender_node,
                    "envelope_sha256": opened.message.digest,
                    "signed_by": opened.message.key_id,
                    "document_type": envelope.document_type,
                    "status": envelope.document_status,
                    "number": envelope.document_number,
                    "delivery_number": inbox_id,
                },
            ),
            evidence.Event(
                evidence.Kind.RECEIPT,
                envelope.message_id,
                {
                    "direction": "issued",
                    "receipt_sha256": hashlib.sha256(stored.receipt).hexdigest(),
                    "tracking": receipt.tracking.value,
                },
            ),
        ]
    )
    certificates.publish(
        session,
        ctx.country,
        "certificate.quarantined" if recorded is None else "certificate.received",
        recorded.certificate if recorded else None,
        now,
        inbox_id=inbox_id,
        tracking=receipt.tracking.value,
        status=envelope.document_status,
        number=envelope.document_number,
    )
    return stored
