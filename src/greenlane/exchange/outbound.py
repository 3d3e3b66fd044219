"""Sending: an agency's certificate becomes a signed document and an outbox envelope, in one go.

Every change an issuing agency makes ends in :func:`_issue`, which stores the
signed document, moves the certificate's status, writes the envelope to the
outbox and logs the evidence, all in the caller's transaction: either the
document and its envelope are both there, or neither is. The delivery worker
(:mod:`greenlane.exchange.delivery`) takes it from there.

    GreenlaneError
     └── SubmissionError           certificate.*: a submission, withdrawal or
                                   replacement refused; carries findings when the
                                   document's checks are why

An agency issues only in its field (an NPPO phytosanitary, a veterinary service
veterinary certificates): anything else is refused with ``auth.forbidden``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from greenlane.errors import GreenlaneError
from greenlane.exchange import certificates
from greenlane.exchange.context import NodeContext
from greenlane.exchange.envelope import encode, make_envelope
from greenlane.exchange.tracking import CertificateStatus, TrackingState
from greenlane.findings import Finding, has_errors
from greenlane.safexml import parse_bytes
from greenlane.sps import amend
from greenlane.store.documents import add_document
from greenlane.store.models import Certificate, OutboxMessage, StoredDocument
from greenlane.trust import evidence, registry
from greenlane.trust.keys import key_id
from greenlane.trust.registry import DatabaseKeys
from greenlane.trust.xmldsig import judge_trust, sign_enveloped, verify_parsed
from greenlane.validation import validate_bytes

MEDIA_TYPE = "application/xml"


class SubmissionError(GreenlaneError):
    """A certificate an agency sent, or a change it asked for, refused; nothing stored."""

    code = "certificate.invalid"

    def __init__(
        self, message: str, *, code: str | None = None, findings: list[Finding] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.findings = findings or []


@dataclass(frozen=True, slots=True)
class Issued:
    certificate: Certificate
    message: OutboxMessage | None
    """None when the same certificate was already submitted (nothing new to send)."""
    superseded: Certificate | None = None
    findings: list[Finding] = field(default_factory=list)


def _agency_of_ours(session: Session, ctx: NodeContext, agency: str) -> registry.Participant:
    participant = registry.participant(session, agency)
    if participant is None or participant.country != ctx.country:
        raise SubmissionError(
            f"{agency} is not an agency of {ctx.country}", code="certificate.not-yours"
        )
    return participant


def _may_issue(participant: registry.Participant, type_code: str) -> None:
    """Refuse a certificate outside the agency's field (a customs service issuing an ePhyto).

    The receiving node would quarantine it (its signer lacks the role), so it is
    refused here, before anything is signed or sent.
    """
    role = certificates.role_for(type_code)
    if role not in participant.roles:
        held = ", ".join(sorted(participant.roles)) or "none"
        raise GreenlaneError(
            f"{participant.id} (roles: {held}) may not issue a type {type_code} certificate: "
            f"that takes the {role} role",
            code="auth.forbidden",
        )


def _signed_by(
    session: Session, ctx: NodeContext, agency: str, raw: bytes, facts: amend.CertificateFacts
) -> bytes:
    """The document signed by ``agency``: by us now, or its own signature checked."""
    if not facts.signed:
        return sign_enveloped(raw, ctx.signer(session, agency))
    role = certificates.role_for(facts.type_code or "")
    check = verify_parsed(parse_bytes(raw).root)
    decision = judge_trust(
        check, DatabaseKeys(session), recorded_at=ctx.clock(), export_country=ctx.country, role=role
    )
    if not decision.trusted or decision.key is None or decision.key.owner != agency:
        raise SubmissionError(
            "the certificate carries a signature that is not a valid signature of " + agency,
            code="certificate.bad-signature",
            findings=[*check.findings, *decision.findings],
        )
    return raw


def _checked(ctx: NodeContext, raw: bytes) -> tuple[amend.CertificateFacts, list[Finding]]:
    result = validate_bytes(raw, "submitted.xml", ctx.settings)
    if result.document is None or result.document_type is None:
        raise SubmissionError(
            "the certificate cannot be read",
            code="certificate.unreadable",
            findings=result.findings,
        )
    if has_errors(result.findings):
        raise SubmissionError(
            f"the certificate has {sum(f.level.value == 'error' for f in result.findings)} "
            "errors: greenlane sends only certificates that pass their checks",
            code="certificate.invalid",
            findings=result.findings,
        )
    facts = amend.facts(result.document.root)
    if not facts.number:
        raise SubmissionError("the certificate has no number", code="certificate.invalid")
    if facts.type_code not in ctx.types:
        raise SubmissionError(
            f"type {facts.type_code!r} is not a type this corridor carries",
            code="certificate.unknown-type",
        )
    if facts.export_country != ctx.country:
        raise SubmissionError(
            f"the certificate is exported from {facts.export_country}, not from {ctx.country}",
            code="certificate.wrong-country",
        )
    if facts.import_country == ctx.country or facts.import_country not in ctx.corridor.countries:
        raise SubmissionError(
            f"import country {facts.import_country!r} is not a partner in corridor "
            f"{ctx.corridor.id}",
            code="certificate.no-route",
        )
    return facts, result.findings


def submit(session: Session, ctx: NodeContext, *, agency: str, raw: bytes) -> Issued:
    """Issue a new certificate (status 70) from an agency; the same bytes again change nothing."""
    participant = _agency_of_ours(session, ctx, agency)
    facts, findings = _checked(ctx, raw)
    assert facts.number is not None
    assert facts.type_code is not None
    _may_issue(participant, facts.type_code)
    if facts.status_code != CertificateStatus.ISSUED.value:
        raise SubmissionError(
            f"a new certificate has status 70 (issued), not {facts.status_code!r}; "
            "withdraw or replace through their own operations",
            code="certificate.status",
        )
    existing = certificates.find(session, "issued", ctx.country, facts.number)
    if existing is not None:
        stored = session.get(StoredDocument, existing.document_id)
        same = stored is not None and (
            stored.sha256 == hashlib.sha256(raw).hexdigest() or _unsigned_equal(stored.raw, raw)
        )
        if same and existing.agency == agency:
            return Issued(existing, None, findings=findings)
        raise SubmissionError(
            f"certificate {facts.number} was already issued with other content; "
            "replace it to change it",
            code="certificate.number-taken",
        )
    if facts.replaces:
        raise SubmissionError(
            "a certificate carrying replacement notes is sent through the replace operation",
            code="certificate.status",
        )
    return _issue(session, ctx, agency=agency, raw=raw, facts=facts, findings=findings)


def _unsigned_equal(stored: bytes, raw: bytes) -> bool:
    """True when ``raw`` is the stored certificate before we signed it."""
    try:
        return amend.without_signature(stored) == amend.without_signature(raw)
    except GreenlaneError:
        return False


def _own(session: Session, ctx: NodeContext, agency: str, certificate_id: int) -> Certificate:
    row = session.get(Certificate, certificate_id)
    if row is None or row.direction != "issued" or row.agency != agency:
        raise SubmissionError(
            f"no certificate {certificate_id} issued by {agency}", code="certificate.not-found"
        )
    if CertificateStatus(row.status).is_terminal:
        raise SubmissionError(
            f"certificate {row.number} is already final ({row.status})", code="certificate.final"
        )
    return row


def withdraw(
    session: Session, ctx: NodeContext, *, agency: str, certificate_id: int, reason: str
) -> Issued:
    """Withdraw a certificate: the same document with status 40, signed again and sent."""
    _agency_of_ours(session, ctx, agency)
    row = _own(session, ctx, agency, certificate_id)
    current = session.get(StoredDocument, row.document_id)
    assert current is not None
    raw = amend.with_status(current.raw, CertificateStatus.WITHDRAWN.value)
    facts, findings = _checked(ctx, raw)
    return _issue(
        session, ctx, agency=agency, raw=raw, facts=facts, findings=findings, reason=reason
    )


def replace(
    session: Session,
    ctx: NodeContext,
    *,
    agency: str,
    certificate_id: int,
    raw: bytes,
    reason: str,
) -> Issued:
    """Issue ``raw`` as the replacement of a certificate, which becomes ``superseded``."""
    participant = _agency_of_ours(session, ctx, agency)
    old = _own(session, ctx, agency, certificate_id)
    old_document = session.get(StoredDocument, old.document_id)
    assert old_document is not None
    old_facts = amend.facts(parse_bytes(old_document.raw).root)  # checked when issued
    new_facts, _ = _checked(ctx, raw)
    _may_issue(participant, new_facts.type_code or "")
    if new_facts.number == old.number:
        raise SubmissionError(
            "a replacement certificate has a number of its own", code="certificate.number-taken"
        )
    if new_facts.number and certificates.find(session, "issued", ctx.country, new_facts.number):
        raise SubmissionError(
            f"certificate {new_facts.number} was already issued", code="certificate.number-taken"
        )
    replacement = amend.as_replacement(
        raw,
        replaced_number=old.number,
        replaced_issued=old_facts.issued or old.created_at.isoformat(),
        reason=reason,
    )
    facts, findings = _checked(ctx, replacement)
    return _issue(
        session, ctx, agency=agency, raw=replacement, facts=facts, findings=findings, reason=reason
    )


def _issue(
    session: Session,
    ctx: NodeContext,
    *,
    agency: str,
    raw: bytes,
    facts: amend.CertificateFacts,
    findings: list[Finding],
    reason: str | None = None,
) -> Issued:
    assert facts.number
    assert facts.type_code
    assert facts.status_code
    assert facts.import_country
    now = ctx.clock()
    signed = _signed_by(session, ctx, agency, raw, facts)
    document = add_document(
        session,
        raw=signed,
        document_type=facts.type_code,
        number=facts.number,
        findings=findings,
        received_at=now,
    )
    recorded = certificates.record(
        session,
        direction="issued",
        issuer=ctx.country,
        destination=facts.import_country,
        number=facts.number,
        document_type=facts.type_code,
        status=CertificateStatus(facts.status_code),
        document_id=document.id,
        at=now,
        agency=agency,
        replaces=facts.replaces,
    )
    message = enqueue(session, ctx, recorded.certificate, signed, facts.status_code, now)
    evidence.append(
        session,
        [
            evidence.Event(
                evidence.Kind.DOCUMENT_SENT,
                document.sha256,
                {
                    "message_id": message.message_id,
                    "to": message.receiver_node,
                    "envelope_sha256": message.envelope_sha256,
                    "document_type": facts.type_code,
                    "status": facts.status_code,
                    "number": facts.number,
                    "agency": agency,
                    "signed_by": key_id(ctx.signer(session, agency).certificate),
                    "reason_sha256": hashlib.sha256(reason.encode()).hexdigest()
                    if reason
                    else None,
                },
            )
        ],
        at=now,
    )
    return Issued(recorded.certificate, message, recorded.superseded, findings)


def enqueue(
    session: Session,
    ctx: NodeContext,
    certificate: Certificate,
    payload: bytes,
    status: str,
    now: datetime,
) -> OutboxMessage:
    """Write the envelope of one document version to the outbox (one per receiving node)."""
    peer = ctx.node_for_country(certificate.destination_country)
    envelope = make_envelope(
        from_country=ctx.country,
        to_country=certificate.destination_country,
        sender_node=ctx.node_id,
        receiver_node=peer.id,
        document_type=certificate.document_type,
        document_status=status,
        document_number=certificate.number,
        payload=payload,
        media_type=MEDIA_TYPE,
        created_at=now,
        types=ctx.types,
    )
    encoded = encode(envelope, payload)
    message = OutboxMessage(
        message_id=envelope.message_id,
        receiver_node=peer.id,
        mode=peer.delivery,
        certificate_id=certificate.id,
        document_id=certificate.document_id,
        document_type=certificate.document_type,
        document_status=status,
        document_number=certificate.number,
        envelope=encoded,
        envelope_sha256=hashlib.sha256(encoded).hexdigest(),
        state=TrackingState.PENDING_DELIVERY.value,
        attempts=0,
        created_at=now,
        queued_at=now,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    return message
