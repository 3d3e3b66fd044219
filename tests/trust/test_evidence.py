"""The evidence log: appends, checkpoints signed by both nodes, and every kind of tampering."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from greenlane.store import migrate
from greenlane.store.engine import make_engine
from greenlane.store.models import EvidenceEntry, PersonalData
from greenlane.trust import evidence, merkle, personal
from greenlane.trust.evidence import Event, Kind
from greenlane.trust.keys import key_id
from greenlane.trust.signers import SoftwareSigner, TrustError
from tests.trust.keyring import T0, Keyring


class Corridor:
    """Our node (az-node) and the partner's (ru-node), each knowing both keys."""

    def __init__(self) -> None:
        self.az = Keyring("AZ")
        self.ru = Keyring("RU")
        self.az_node: SoftwareSigner = self.az.make("az-node")
        self.ru_node: SoftwareSigner = self.ru.make("ru-node")
        self.keys = Keyring("AZ").add(self.az).add(self.ru)


@pytest.fixture
def corridor() -> Corridor:
    return Corridor()


def _events(n: int, start: int = 0) -> list[Event]:
    return [
        Event(Kind.DOCUMENT_RECEIVED, f"{i:064x}", {"document": f"{i:064x}", "type": "851"})
        for i in range(start, start + n)
    ]


def _countersigned(session: Session, corridor: Corridor, at_minutes: int = 1) -> None:
    """Our checkpoint, countersigned by the partner (on its side) and the countersignature kept."""
    at = T0 + timedelta(minutes=at_minutes)
    point = evidence.make_checkpoint(session, "az-node", corridor.az_node, at=at)
    counter = corridor.ru_node.sign(point.body)  # what the partner's countersign() returns
    evidence.record_countersignature(
        session,
        point,
        counter,
        key_id(corridor.ru_node.certificate),
        keys=corridor.keys,
        partner_node="ru-node",
        at=at,
    )


def _verify(session: Session, corridor: Corridor) -> evidence.LogReport:
    return evidence.verify_log(session, "az-node", corridor.keys, partner="ru-node")


def test_appends_build_the_tree_the_entries_describe(session: Session) -> None:
    """The stored head is the RFC 9162 root of the entries' leaf hashes, batch after batch."""
    evidence.append(session, _events(5), at=T0)
    evidence.append(session, _events(8, 5), at=T0 + timedelta(seconds=1))
    size, root = evidence.size_and_root(session)
    assert size == 13
    assert root == merkle.root(evidence.leaf_hashes(session))
    seqs = [e.seq for e in session.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq))]
    assert seqs == list(range(13))


def test_an_untouched_log_verifies(session: Session, corridor: Corridor) -> None:
    evidence.append(session, _events(20), at=T0)
    _countersigned(session, corridor)
    evidence.append(session, _events(3, 20), at=T0 + timedelta(minutes=2))
    report = _verify(session, corridor)
    assert report.ok, report.problems
    assert (report.size, report.checkpoints, report.countersigned) == (23, 1, 1)


def test_the_database_refuses_to_update_or_delete_entries(engine: Engine, session: Session) -> None:
    """Writes go only through the append path: a trigger stops UPDATE and DELETE."""
    evidence.append(session, _events(2), at=T0)
    for statement in (
        "UPDATE evidence_entries SET kind = 'x' WHERE seq = 0",
        "DELETE FROM evidence_entries WHERE seq = 1",
    ):
        with pytest.raises((DBAPIError, IntegrityError)) as caught, session.begin_nested():
            session.execute(text(statement))
        assert "append-only" in str(caught.value)


def _drop_triggers(session: Session) -> None:
    """What an attacker with the database owner's rights does first."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER evidence_append_only ON evidence_entries"))
    else:
        session.execute(text("DROP TRIGGER evidence_no_update"))
        session.execute(text("DROP TRIGGER evidence_no_delete"))


def _tampered(session: Session, corridor: Corridor, statements: list[str]) -> evidence.LogReport:
    evidence.append(session, _events(10), at=T0)
    _countersigned(session, corridor)
    evidence.append(session, _events(4, 10), at=T0 + timedelta(minutes=2))
    _drop_triggers(session)
    for statement in statements:
        session.execute(text(statement))
    session.expire_all()
    report = _verify(session, corridor)
    assert not report.ok
    return report


def _codes(report: evidence.LogReport) -> set[str]:
    return {code for _, code, _ in report.problems}


def test_a_modified_entry_is_named(session: Session, corridor: Corridor) -> None:
    """One row edited with plain SQL: the first broken entry is that one."""
    if session.get_bind().dialect.name == "postgresql":
        edited = "convert_to(replace(convert_from(body, 'UTF8'), '851', '657'), 'UTF8')"
    else:
        edited = "REPLACE(body, '851', '657')"
    report = _tampered(
        session,
        corridor,
        [f"UPDATE evidence_entries SET body = {edited} WHERE seq = 6"],  # noqa: S608
    )
    assert report.first_broken == 6
    assert "evidence.entry-modified" in _codes(report)


def test_a_modified_entry_with_its_hash_recomputed_breaks_the_signed_root(
    session: Session, corridor: Corridor
) -> None:
    """Changing body and leaf hash together still disagrees with the countersigned checkpoint."""
    evidence.append(session, _events(10), at=T0)
    _countersigned(session, corridor)
    _drop_triggers(session)
    row = session.get(EvidenceEntry, 3)
    assert row is not None
    forged = row.body.replace(b"851", b"657")
    session.execute(
        text("UPDATE evidence_entries SET body = :b, leaf_hash = :h WHERE seq = 3"),
        {"b": forged, "h": merkle.leaf_hash(forged)},
    )
    session.expire_all()
    report = _verify(session, corridor)
    assert "evidence.history-rewritten" in _codes(report)


def test_a_deleted_entry_is_found(session: Session, corridor: Corridor) -> None:
    report = _tampered(session, corridor, ["DELETE FROM evidence_entries WHERE seq = 4"])
    assert report.first_broken == 4
    assert "evidence.entry-missing" in _codes(report)


def test_a_deleted_last_entry_is_found(session: Session, corridor: Corridor) -> None:
    """Even the newest entry, after the last checkpoint: the stored head no longer matches."""
    report = _tampered(session, corridor, ["DELETE FROM evidence_entries WHERE seq = 13"])
    assert "evidence.state-mismatch" in _codes(report)


def test_reordered_entries_are_found(session: Session, corridor: Corridor) -> None:
    """Two entries swapped (bodies and hashes moved together): each holds another's place."""
    report = _tampered(
        session,
        corridor,
        [
            "UPDATE evidence_entries SET seq = 1000 WHERE seq = 2",
            "UPDATE evidence_entries SET seq = 2 WHERE seq = 5",
            "UPDATE evidence_entries SET seq = 5 WHERE seq = 1000",
        ],
    )
    assert report.first_broken == 2
    assert "evidence.entry-moved" in _codes(report)


def test_an_inserted_entry_is_found(session: Session, corridor: Corridor) -> None:
    """An entry slipped in the middle shifts the rest: their own numbers give it away."""
    evidence.append(session, _events(10), at=T0)
    _countersigned(session, corridor)
    _drop_triggers(session)
    bodies = [
        bytes(e.body) for e in session.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq))
    ]
    session.execute(text("DELETE FROM evidence_entries WHERE seq >= 5"))
    forged = evidence.entry_body(5, Event(Kind.DECISION, "x", {"lane": "green"}), T0)
    for seq, body in enumerate([forged, *bodies[5:]], start=5):
        session.execute(
            text(
                "INSERT INTO evidence_entries (seq, kind, recorded_at, subject, body, leaf_hash) "
                "VALUES (:s, 'x', :t, NULL, :b, :h)"
            ),
            {"s": seq, "t": T0.replace(tzinfo=None), "b": body, "h": merkle.leaf_hash(body)},
        )
    session.expire_all()
    report = _verify(session, corridor)
    assert report.first_broken == 6
    assert {"evidence.entry-moved", "evidence.history-rewritten"} <= _codes(report)


def test_a_rewritten_history_is_found(session: Session, corridor: Corridor) -> None:
    """The whole log rebuilt consistently (entries, hashes, head) from a point on: the partner's
    countersignature on the old root cannot be forged."""
    evidence.append(session, _events(8), at=T0)
    _countersigned(session, corridor)
    _drop_triggers(session)
    session.execute(text("DELETE FROM evidence_entries"))
    session.execute(text("DELETE FROM evidence_state"))
    session.expunge_all()
    # Re-append through the real path: entries, hashes and head all agree; entries 3.. differ.
    evidence.append(session, _events(3), at=T0)
    evidence.append(session, [Event(Kind.DECISION, "lot-7", {"lane": "green"})] * 5, at=T0)
    session.expire_all()
    report = _verify(session, corridor)
    assert "evidence.history-rewritten" in _codes(report)


def test_a_forged_checkpoint_is_found(session: Session, corridor: Corridor) -> None:
    """Rewriting the checkpoint to match a rewritten log breaks its signatures."""
    evidence.append(session, _events(6), at=T0)
    _countersigned(session, corridor)
    session.execute(text("UPDATE evidence_checkpoints SET root = :r"), {"r": b"\x00" * 32})
    session.expire_all()
    report = _verify(session, corridor)
    assert "evidence.bad-checkpoint" in _codes(report)


def test_the_partner_countersigns_only_a_growing_log(session: Session, corridor: Corridor) -> None:
    """On the partner's side: our checkpoint is kept and countersigned; a rollback is refused."""
    theirs = corridor.keys
    body_a = evidence.checkpoint_body("az-node", 5, b"\x01" * 32, T0)
    body_b = evidence.checkpoint_body("az-node", 5, b"\x02" * 32, T0 + timedelta(seconds=1))
    body_c = evidence.checkpoint_body("az-node", 3, b"\x03" * 32, T0 + timedelta(seconds=2))
    kid = key_id(corridor.az_node.certificate)
    row, counter = evidence.countersign(
        session,
        body_a,
        corridor.az_node.sign(body_a),
        kid,
        keys=theirs,
        partner_node="az-node",
        signer=corridor.ru_node,
        me="ru-node",
        at=T0,
    )
    assert row.countersignature == counter
    for body in (body_b, body_c):
        with pytest.raises(TrustError) as caught:
            evidence.countersign(
                session,
                body,
                corridor.az_node.sign(body),
                kid,
                keys=theirs,
                partner_node="az-node",
                signer=corridor.ru_node,
                me="ru-node",
                at=T0,
            )
        assert caught.value.code == "evidence.history-rewritten"


def test_a_checkpoint_signed_by_another_key_is_refused(
    session: Session, corridor: Corridor
) -> None:
    body = evidence.checkpoint_body("az-node", 1, b"\x01" * 32, T0)
    with pytest.raises(TrustError) as caught:
        evidence.countersign(
            session,
            body,
            corridor.ru_node.sign(body),
            key_id(corridor.ru_node.certificate),
            keys=corridor.keys,
            partner_node="az-node",
            signer=corridor.ru_node,
            me="ru-node",
            at=T0,
        )
    assert caught.value.code == "evidence.bad-checkpoint"


def test_erasing_personal_data_keeps_the_log_verifying(
    session: Session, corridor: Corridor
) -> None:
    """The log holds a commitment; once the name and salt are erased, it still verifies."""
    row, commitment = personal.keep(
        session,
        document_type="SPSCertificate",
        reference="AZ-2026-000123",
        kind="signatory",
        value="Aysel Mammadova",
        at=T0,
    )
    evidence.append(
        session,
        [Event(Kind.DOCUMENT_SENT, "AZ-2026-000123", {"signatory": commitment})],
        at=T0,
    )
    _countersigned(session, corridor)
    assert personal.matches(row, commitment)
    assert b"Aysel" not in b"".join(e.body for e in session.scalars(select(EvidenceEntry)))
    assert personal.erase_due(session, T0 + timedelta(days=5 * 365 + 1)) == 1
    erased = session.get(PersonalData, row.id)
    assert erased is not None
    assert erased.value is None
    assert erased.salt is None
    assert not personal.matches(erased, commitment)
    assert _verify(session, corridor).ok


def test_nothing_is_erased_before_its_time(session: Session) -> None:
    personal.keep(
        session, document_type="SPSCertificate", reference="r", kind="driver", value="X", at=T0
    )
    assert personal.erase_due(session, T0 + timedelta(days=30)) == 0


@pytest.fixture
def partner_db(tmp_path: Path) -> Iterator[Session]:
    """The partner node's own database: it sees our checkpoints, never our entries."""
    engine = make_engine(f"sqlite:///{tmp_path / 'partner.db'}")
    migrate.upgrade(engine)
    with Session(engine) as partner:
        yield partner
    engine.dispose()


def _send(
    ours: Session, partner: Session, corridor: Corridor, at: datetime, proof_from: int | None
) -> None:
    point = evidence.make_checkpoint(ours, "az-node", corridor.az_node, at=at)
    proof = None if proof_from is None else evidence.consistency_proof(ours, proof_from, point.size)
    evidence.countersign(
        partner,
        point.body,
        point.signature,
        point.key_id,
        keys=corridor.keys,
        partner_node="az-node",
        signer=corridor.ru_node,
        me="ru-node",
        at=at,
        proof=proof,
    )


def test_the_partner_countersigns_a_grown_log_only_with_a_consistency_proof(
    session: Session, partner_db: Session, corridor: Corridor
) -> None:
    """A later checkpoint must prove it extends the one countersigned before (RFC 9162)."""
    evidence.append(session, _events(5), at=T0)
    _send(session, partner_db, corridor, T0, proof_from=None)
    evidence.append(session, _events(6, 5), at=T0 + timedelta(minutes=1))
    with pytest.raises(TrustError) as caught:
        _send(session, partner_db, corridor, T0 + timedelta(minutes=1), proof_from=None)
    assert caught.value.code == "evidence.history-rewritten"
    _send(session, partner_db, corridor, T0 + timedelta(minutes=2), proof_from=5)


def test_the_partner_refuses_a_grown_log_that_rewrote_its_past(
    session: Session, partner_db: Session, corridor: Corridor
) -> None:
    """Our log rebuilt with another past: no consistency proof can join the two roots."""
    evidence.append(session, _events(5), at=T0)
    _send(session, partner_db, corridor, T0, proof_from=None)
    _drop_triggers(session)
    session.execute(text("DELETE FROM evidence_entries"))
    session.execute(text("DELETE FROM evidence_state"))
    session.execute(text("DELETE FROM evidence_checkpoints"))
    session.expunge_all()
    evidence.append(session, _events(9, 100), at=T0)
    with pytest.raises(TrustError) as caught:
        _send(session, partner_db, corridor, T0 + timedelta(minutes=1), proof_from=5)
    assert caught.value.code == "evidence.history-rewritten"
