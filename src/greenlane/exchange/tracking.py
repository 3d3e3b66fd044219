"""Where a message and a certificate stand: the hub's tracking states and the status order.

Two different things move here, and both only forward:

- a *message* (one envelope sent to one node) has a tracking state, named as
  the IPPC ePhyto Hub names it (``HUBTrackingInfo``), so a hub user finds the
  word they know and a node can later be bridged to the real hub;
- a *certificate* has a status (UNCL 4405: 70 issued, 40 withdrawn, and the
  listed but unused 39 approved and 41 rejected) plus ``superseded``, which is
  greenlane's own word for a certificate that a replacement has taken the
  place of (the replacement itself travels as a new status-70 certificate).

Messages are retried and may arrive out of order, so both moves are decided
by rank, never by arrival order: a late "issued" never revives a withdrawn
certificate, and a late failure never hides a signed receipt.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum, StrEnum

from greenlane.findings import Finding, Level


class TrackingState(StrEnum):
    """The hub's ``HUBTrackingInfo`` values, spelled exactly as its WSDL does."""

    PENDING_DELIVERY = "PendingDelivery"
    DELIVERED = "Delivered"
    DELIVERED_WITH_WARNINGS = "DeliveredWithWarnings"
    DELIVERED_NOT_READABLE = "DeliveredNotReadable"
    FAILED_DELIVERY = "FailedDelivery"
    ENVELOPE_NOT_EXISTS = "EnvelopeNotExists"

    @property
    def is_final(self) -> bool:
        """True when the delivery worker stops working on the message.

        Everything but ``PendingDelivery``. ``FailedDelivery`` is final for the
        worker (the last retry is spent) but a receipt that arrives later still
        moves it to a delivered state: see :func:`tracking_may_move`.
        """
        return self is not TrackingState.PENDING_DELIVERY

    @property
    def is_delivered(self) -> bool:
        """True for the three states a signed receipt can carry."""
        return self in DELIVERED_STATES


DELIVERED_STATES = frozenset(
    {
        TrackingState.DELIVERED,
        TrackingState.DELIVERED_WITH_WARNINGS,
        TrackingState.DELIVERED_NOT_READABLE,
    }
)
"""What a receipt may say: the receiver stored the envelope, read it or not."""

FINAL_STATES = frozenset(s for s in TrackingState if s.is_final)


def tracking_may_move(stored: TrackingState, new: TrackingState) -> bool:
    """Whether a message's stored tracking state may become ``new``.

    - the same state again is allowed (a retry, a re-sent receipt): no change;
    - ``PendingDelivery`` moves to any state the sender records;
    - ``FailedDelivery`` moves only to a delivered state: a receipt is proof of
      delivery and beats the sender's having given up;
    - a delivered state never moves: the receipt that set it is signed and the
      receiver answers every retry with that same receipt;
    - ``EnvelopeNotExists`` is the hub's answer to a query about an unknown
      envelope, never the state of a message that exists: nothing moves to or
      from it.
    """
    if stored is new:
        return True
    if TrackingState.ENVELOPE_NOT_EXISTS in (stored, new):
        return False
    if stored is TrackingState.PENDING_DELIVERY:
        return True
    if stored is TrackingState.FAILED_DELIVERY:
        return new.is_delivered
    return False


def delivery_state(findings: Iterable[Finding], *, readable: bool) -> TrackingState:
    """The state a receipt reports for a stored envelope.

    Validation never decides *whether* a message is acknowledged, only how: a
    certificate that fails its checks is still stored and receipted, with its
    findings, so nothing is silently dropped. Unreadable payloads (not XML, not
    the expected document) say ``DeliveredNotReadable``; any error or warning
    says ``DeliveredWithWarnings``; info findings alone still mean ``Delivered``.
    """
    if not readable:
        return TrackingState.DELIVERED_NOT_READABLE
    if any(f.level in (Level.ERROR, Level.WARNING) for f in findings):
        return TrackingState.DELIVERED_WITH_WARNINGS
    return TrackingState.DELIVERED


class CertificateStatus(StrEnum):
    """A certificate's status: its UNCL 4405 code, or ``superseded`` once replaced."""

    APPROVED = "39"
    ISSUED = "70"
    WITHDRAWN = "40"
    REJECTED = "41"
    SUPERSEDED = "superseded"

    @property
    def rank(self) -> int:
        """Its place in the order statuses move in; terminal statuses share the top rank."""
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        """True when nothing may change it any more."""
        return self.rank == _TERMINAL


_TERMINAL = 2
_RANK = {
    # Listed but unused on the hub: placed before issue, so an unexpected 39
    # can never undo an issue or a withdrawal.
    CertificateStatus.APPROVED: 0,
    CertificateStatus.ISSUED: 1,
    CertificateStatus.WITHDRAWN: _TERMINAL,
    # Listed but unused on the hub: as final as a withdrawal.
    CertificateStatus.REJECTED: _TERMINAL,
    CertificateStatus.SUPERSEDED: _TERMINAL,
}


class StatusMove(Enum):
    """What to do with a status that arrives for a certificate already stored."""

    APPLY = "apply"
    """A step forward: store it."""
    SAME = "same"
    """The status already stored (a retry, a re-sent message): nothing to do."""
    STALE = "stale"
    """A step back or sideways from a terminal status: keep the stored one.

    Not an error: messages are retried and may arrive in any order, so a late
    ``issued`` after ``withdrawn`` is expected and must simply lose.
    """


def status_move(stored: CertificateStatus | None, new: CertificateStatus) -> StatusMove:
    """Decide whether ``new`` may replace ``stored`` (None: nothing stored yet).

    Statuses only move up the ranks approved < issued < {withdrawn, rejected,
    superseded}. The first terminal status stays: a withdrawn certificate is not
    later superseded (a replacement of it is a new certificate in its own right),
    and a superseded one is not later withdrawn.
    """
    if stored is None:
        return StatusMove.APPLY
    if stored is new:
        return StatusMove.SAME
    if new.rank > stored.rank:
        return StatusMove.APPLY
    return StatusMove.STALE


def may_replace(stored: CertificateStatus | None, new: CertificateStatus) -> bool:
    """True when ``new`` is a step forward from ``stored`` and should be stored."""
    return status_move(stored, new) is StatusMove.APPLY
