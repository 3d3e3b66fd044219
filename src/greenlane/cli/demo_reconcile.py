"""The demo's reckoning: does everything the day did add up, on both sides, independently?

Read again after the day, not taken from the live board: each certificate's
status through both agency APIs; from AZ's database every receipt, verified
against RU's node key as AZ's own registry holds it and compared byte for byte
with what RU's inbox keeps; from both databases the evidence logs, recomputed
and checked. Anything that does not add up is named in ``problems``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from greenlane.cli.demo_certificates import goods
from greenlane.cli.demo_day import Day, status_label
from greenlane.corridor.scaffold import Scaffold
from greenlane.errors import GreenlaneError
from greenlane.exchange.receipts import verify_receipt
from greenlane.store.engine import engine_from_settings, session_factory
from greenlane.store.models import EvidenceCheckpoint, InboxMessage, OutboxMessage
from greenlane.trust.evidence import LogReport, size_and_root, verify_log
from greenlane.trust.registry import DatabaseKeys

SENDER, RECEIVER = "az-node", "ru-node"


@dataclass(frozen=True, slots=True)
class Line:
    """One certificate as each side's agency API shows it after the day."""

    number: str
    goods: str
    az_status: str | None
    az_replaced_by: str | None
    tracking: str | None
    ru_status: str | None
    ru_replaced_by: str | None

    @property
    def in_step(self) -> bool:
        return (
            self.tracking == "Delivered"
            and self.az_status == self.ru_status
            and self.az_replaced_by == self.ru_replaced_by
        )


@dataclass
class Reconciliation:
    lines: list[Line] = field(default_factory=list)
    issued: int = 0
    """Certificates the AZ agency API lists as issued."""
    received: int = 0
    """Certificates the RU agency API lists as received."""
    sent: int = 0
    """Messages in AZ's outbox."""
    arrived: int = 0
    """Messages from AZ in RU's inbox."""
    delivered: int = 0
    """AZ outbox messages whose receipt says Delivered."""
    receipts_verified: int = 0
    receipts_matching: int = 0
    """Receipts AZ keeps that are byte for byte the ones RU keeps."""
    logs: dict[str, LogReport] = field(default_factory=dict)
    expected_certificates: int = 0
    expected_messages: int = 0
    hostile_refused: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def in_step(self) -> int:
        return sum(line.in_step for line in self.lines)


def _list(client: httpx.Client, direction: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/certificates", params={"direction": direction, "limit": 500})
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["certificates"]
    return items


def _statuses(rec: Reconciliation, day: Day, az: httpx.Client, ru: httpx.Client) -> None:
    issued = _list(az, "issued")
    received = {c["number"]: c for c in _list(ru, "received")}
    rec.issued, rec.received = len(issued), len(received)
    lots = {row.number: row.lot for row in day.rows}
    for item in issued:
        detail = az.get(f"/api/v1/certificates/{item['id']}").json()
        there = received.get(item["number"], {})
        lot = lots.get(item["number"])
        rec.lines.append(
            Line(
                number=item["number"],
                goods=goods(lot) if lot else "?",
                az_status=detail["status"],
                az_replaced_by=detail["replaced_by"],
                tracking=detail["tracking"],
                ru_status=there.get("status"),
                ru_replaced_by=there.get("replaced_by"),
            )
        )
    for line in rec.lines:
        if not line.in_step:
            rec.problems.append(
                f"{line.number}: at AZ {status_label(line.az_status, line.az_replaced_by)} "
                f"({line.tracking}), at RU {status_label(line.ru_status, line.ru_replaced_by)}"
            )
    unknown = set(received) - {line.number for line in rec.lines}
    if unknown:
        rec.problems.append(f"RU holds certificates AZ never issued: {', '.join(sorted(unknown))}")


def _ru_inbox(made: Scaffold, rec: Reconciliation) -> dict[str, InboxMessage]:
    engine = engine_from_settings(made.settings(RECEIVER))
    try:
        with session_factory(engine)() as session:
            inbox = {
                m.message_id: m
                for m in session.scalars(
                    select(InboxMessage).where(InboxMessage.sender_node == SENDER)
                )
            }
            rec.logs[RECEIVER] = verify_log(session, RECEIVER, DatabaseKeys(session))
    finally:
        engine.dispose()
    rec.arrived = len(inbox)
    return inbox


def _az_outbox(made: Scaffold, rec: Reconciliation, inbox: dict[str, InboxMessage]) -> None:
    engine = engine_from_settings(made.settings(SENDER))
    try:
        with session_factory(engine)() as session:
            keys = DatabaseKeys(session)
            rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
            rec.sent = len(rows)
            for row in rows:
                _receipt(rec, row, inbox.get(row.message_id), keys)
            rec.logs[SENDER] = verify_log(session, SENDER, keys)
    finally:
        engine.dispose()
    missing = set(inbox) - {row.message_id for row in rows}
    if missing:
        rec.problems.append(f"RU received messages AZ never sent: {', '.join(sorted(missing))}")


def _receipt(
    rec: Reconciliation, row: OutboxMessage, there: InboxMessage | None, keys: DatabaseKeys
) -> None:
    what = f"message {row.message_id} ({row.document_number}, status {row.document_status})"
    if row.state == "Delivered":
        rec.delivered += 1
    if there is None:
        rec.problems.append(f"{what}: not in RU's inbox")
    if row.receipt is None or row.receipt_token is None:
        rec.problems.append(f"{what}: no receipt at AZ ({row.state})")
        return
    try:
        verify_receipt(
            row.receipt,
            row.receipt_token,
            keys=keys,
            expected_sender_node=row.receiver_node,
            expected_digest=row.envelope_sha256,
            recorded_at=row.delivered_at or datetime.now(UTC),
        )
    except GreenlaneError as exc:
        rec.problems.append(f"{what}: the receipt does not verify [{exc.code}] {exc.message}")
    else:
        rec.receipts_verified += 1
    if there is not None:
        if there.receipt == row.receipt and there.envelope_sha256 == row.envelope_sha256:
            rec.receipts_matching += 1
        else:
            rec.problems.append(f"{what}: AZ and RU keep different receipts or envelopes")


def _counts(rec: Reconciliation) -> None:
    expected = {
        "certificates issued at AZ": (rec.issued, rec.expected_certificates),
        "certificates received at RU": (rec.received, rec.expected_certificates),
        "messages sent by AZ": (rec.sent, rec.expected_messages),
        "messages arrived at RU": (rec.arrived, rec.expected_messages),
        "messages delivered": (rec.delivered, rec.expected_messages),
        "receipts verified": (rec.receipts_verified, rec.expected_messages),
    }
    for what, (got, wanted) in expected.items():
        if got != wanted:
            rec.problems.append(f"{what}: {got}, expected {wanted}")
    for node, report in rec.logs.items():
        if report.countersigned == 0:
            rec.problems.append(
                f"evidence log of {node}: no checkpoint countersigned by the partner"
            )
        for seq, code, message in report.problems:
            at = f" at entry {seq}" if seq is not None else ""
            rec.problems.append(f"evidence log of {node}{at}: [{code}] {message}")
    if rec.hostile_refused is None:
        rec.problems.append("the hostile file was not refused")


def reconcile(
    made: Scaffold, day: Day, urls: dict[str, str], tokens: dict[str, str]
) -> Reconciliation:
    """Check the day on both nodes; ``tokens`` holds az-fsa's and ru-rsn's."""
    rec = Reconciliation(
        expected_certificates=len(day.rows),
        expected_messages=day.messages,
        hostile_refused=day.hostile_refused,
        problems=list(day.problems),
    )

    def client(node: str, agency: str) -> httpx.Client:
        return httpx.Client(
            base_url=urls[node],
            headers={"Authorization": f"Bearer {tokens[agency]}"},
            trust_env=False,
            timeout=10.0,
        )

    try:
        with client(SENDER, "az-fsa") as az, client(RECEIVER, "ru-rsn") as ru:
            _statuses(rec, day, az, ru)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        rec.problems.append(f"could not read the certificates from both nodes: {exc}")
    _az_outbox(made, rec, _ru_inbox(made, rec))
    _counts(rec)
    return rec


def _mark(ok: bool) -> Text:
    return Text("yes", style="bold green") if ok else Text("NO", style="bold red")


def summary(rec: Reconciliation) -> RenderableType:
    """The certificates side by side, then the totals; each row says whether it adds up."""
    certificates = Table(title="Certificates, as each side shows them", title_justify="left")
    for column in ("certificate", "goods", "at AZ", "tracking at AZ", "at RU", "in step"):
        certificates.add_column(column, no_wrap=column != "goods")
    for line in rec.lines:
        certificates.add_row(
            line.number,
            line.goods,
            status_label(line.az_status, line.az_replaced_by),
            line.tracking or "-",
            status_label(line.ru_status, line.ru_replaced_by),
            _mark(line.in_step),
        )
    totals = Table(title="Reconciliation", title_justify="left")
    for column in ("", "AZ (az-node)", "RU (ru-node)", "adds up"):
        totals.add_column(column)
    n = rec.expected_messages
    totals.add_row(
        "certificates",
        f"{rec.issued} issued",
        f"{rec.received} received",
        _mark(rec.issued == rec.received == rec.expected_certificates),
    )
    totals.add_row(
        "messages",
        f"{rec.sent} sent, {rec.delivered} delivered",
        f"{rec.arrived} arrived",
        _mark(rec.sent == rec.delivered == rec.arrived == n),
    )
    totals.add_row(
        "signed receipts",
        f"{rec.receipts_verified}/{rec.sent} verified with ru-node's key",
        f"{rec.receipts_matching}/{rec.arrived} the same bytes",
        _mark(rec.receipts_verified == rec.receipts_matching == n),
    )
    totals.add_row(
        "statuses in step",
        f"{rec.in_step}/{len(rec.lines)}",
        f"{rec.in_step}/{rec.received}",
        _mark(rec.in_step == len(rec.lines) == rec.expected_certificates),
    )
    az_log, ru_log = rec.logs.get(SENDER), rec.logs.get(RECEIVER)
    totals.add_row(
        "evidence log",
        _log(az_log),
        _log(ru_log),
        _mark(az_log is not None and ru_log is not None and az_log.ok and ru_log.ok),
    )
    totals.add_row(
        "hostile file",
        f"refused ({rec.hostile_refused})" if rec.hostile_refused else "NOT refused",
        "never sent",
        _mark(rec.hostile_refused is not None),
    )
    return Group(certificates, Text(), totals)


def _log(report: LogReport | None) -> str:
    if report is None:
        return "not read"
    return (
        f"{'verified' if report.ok else 'BROKEN'}, {report.size} entries, "
        f"{report.countersigned} checkpoint(s) countersigned"
    )


def countersigned_to_the_end(made: Scaffold, timeout: float = 20.0) -> bool:
    """Wait until each node's whole log is covered by a checkpoint its partner countersigned."""
    deadline = time.monotonic() + timeout
    while True:
        if all(_covered(made, node) for node in (SENDER, RECEIVER)):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _covered(made: Scaffold, node: str) -> bool:
    engine = engine_from_settings(made.settings(node))
    try:
        with session_factory(engine)() as session:
            size, _ = size_and_root(session)
            signed = session.scalar(
                select(func.max(EvidenceCheckpoint.size)).where(
                    EvidenceCheckpoint.log == node,
                    EvidenceCheckpoint.countersignature.is_not(None),
                )
            )
    finally:
        engine.dispose()
    return signed == size
