"""The demo's day at the AZ NPPO, played through the agency API as an integrator would.

The AZ Food Safety Agency (token ``az-fsa``) issues five phytosanitary
certificates and one veterinary certificate to Russia, withdraws one and
replaces another for a new consignee, and sends one hostile file that must be
refused. A live board shows each certificate as both sides see it: its status
and tracking at AZ, its status at RU (read with the Rosselkhoznadzor's token
``ru-rsn``); each action and each change seen is printed as it happens. Every
wait is bounded: a step that does not settle is reported, never waited on forever.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from greenlane.cli import demo_certificates as lots
from greenlane.cli.demo_certificates import Lot, certificate, goods

SETTLE_TIMEOUT = 30.0
"""Seconds every message has to be receipted and RU to show every status."""
POLL_INTERVAL = 0.1
PENDING = "PendingDelivery"
FINAL_TRACKING = frozenset(
    {"Delivered", "DeliveredWithWarnings", "DeliveredNotReadable", "FailedDelivery"}
)
STATUS_NAMES = {
    "39": "approved",
    "70": "issued",
    "40": "withdrawn",
    "41": "rejected",
    "superseded": "replaced",
}

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>\n"
)


def status_label(status: str | None, replaced_by: str | None = None) -> str:
    """``70 issued``, ``40 withdrawn``, ``replaced by AZ-2026-000128``; ``-`` for nothing yet."""
    if status is None:
        return "-"
    if status == "superseded":
        return f"replaced by {replaced_by}" if replaced_by else "replaced"
    name = STATUS_NAMES.get(status)
    return f"{status} {name}" if name else status


@dataclass
class Row:
    """One certificate as the board shows it."""

    az_id: int
    lot: Lot
    az_status: str | None = None
    az_replaced_by: str | None = None
    tracking: str | None = None
    ru_status: str | None = None
    ru_replaced_by: str | None = None

    @property
    def number(self) -> str:
        return self.lot.number

    @property
    def settled(self) -> bool:
        """Receipted at AZ, and RU shows what AZ shows."""
        return (
            self.tracking in FINAL_TRACKING
            and self.az_status == self.ru_status
            and self.az_replaced_by == self.ru_replaced_by
        )


@dataclass
class Day:
    """What the day did: the certificates, the messages sent, the refusal, what went wrong."""

    rows: list[Row] = field(default_factory=list)
    messages: int = 0
    """Messages the AZ node had to deliver: one per issue, withdrawal and replacement."""
    hostile_refused: str | None = None
    """The finding code the hostile file was refused with, None if it was not."""
    problems: list[str] = field(default_factory=list)


def _tracking_style(tracking: str | None) -> str:
    if tracking == "Delivered":
        return "green"
    if tracking in (None, PENDING):
        return "yellow"
    return "bold red"


def board(day: Day) -> Table:
    """The live board: one line per certificate, both sides."""
    table = Table(title="AZ -> RU, as both nodes see it", title_justify="left")
    for column in ("certificate", "goods", "type", "at AZ", "tracking at AZ", "at RU"):
        table.add_column(column, no_wrap=column != "goods")
    for row in day.rows:
        in_step = row.ru_status == row.az_status and row.ru_replaced_by == row.az_replaced_by
        table.add_row(
            row.number,
            goods(row.lot),
            "veterinary" if row.lot.type_code == "853" else "phytosanitary",
            status_label(row.az_status, row.az_replaced_by),
            Text(row.tracking or "-", style=_tracking_style(row.tracking)),
            Text(
                status_label(row.ru_status, row.ru_replaced_by),
                style="green" if in_step else "yellow",
            ),
        )
    return table


def _error_of(answer: httpx.Response) -> str:
    try:
        error = answer.json()["error"]
        return f"[{error['code']}] {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code}"


class _Play:
    """The day's moves and the board they update."""

    def __init__(
        self, az: httpx.Client, ru: httpx.Client, live: Live, day: Day, pace: float
    ) -> None:
        self.az, self.ru, self.live, self.day, self.pace = az, ru, live, day, pace
        self.seen: dict[str, str] = {}
        """Message id -> the tracking last printed for it."""

    def say(self, text: str | Text, style: str = "") -> None:
        stamp = Text(datetime.now().strftime("%H:%M:%S.%f")[:12] + " ", style="dim")
        line = Text.assemble(stamp, text if isinstance(text, Text) else Text(text, style=style))
        self.live.console.print(line)

    def fail(self, what: str) -> None:
        self.day.problems.append(what)
        self.say(what, "bold red")

    def write(self, what: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """POST to the AZ agency API; a refusal is a problem of the day, not an exception."""
        try:
            answer = self.az.post(path, **kwargs)
        except httpx.HTTPError as exc:
            self.fail(f"{what}: the AZ node did not answer ({exc})")
            return None
        if answer.status_code not in (200, 201):
            self.fail(f"{what}: refused {_error_of(answer)}")
            return None
        body: dict[str, Any] = answer.json()
        self.day.messages += 1
        return body

    def add(self, body: dict[str, Any], lot: Lot) -> None:
        row = Row(az_id=int(body["id"]), lot=lot)
        self.day.rows.append(row)
        self._az_changes(row, body)

    def poll(self) -> None:
        """Read both sides once, print what changed, redraw the board."""
        try:
            received = self.ru.get(
                "/api/v1/certificates", params={"direction": "received", "limit": 500}
            )
            at_ru = {c["number"]: c for c in received.json()["certificates"]}
            for row in self.day.rows:
                if not row.settled:  # a settled one changes only when the day acts on it
                    at_az = self.az.get(f"/api/v1/certificates/{row.az_id}").json()
                    self._az_changes(row, at_az)
                self._ru_changes(row, at_ru.get(row.number))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.say(f"(could not read a node: {exc}; trying again)", "yellow")
        self.live.update(board(self.day), refresh=True)

    def _az_changes(self, row: Row, at_az: dict[str, Any]) -> None:
        row.az_status, row.az_replaced_by = at_az["status"], at_az["replaced_by"]
        row.tracking = at_az["tracking"]
        for message in at_az["messages"]:
            tracking = message["tracking"]
            if self.seen.get(message["message_id"]) == tracking or tracking == PENDING:
                continue
            self.seen[message["message_id"]] = tracking
            took = ""
            if message["delivered_at"]:
                seconds = (
                    datetime.fromisoformat(message["delivered_at"])
                    - datetime.fromisoformat(message["created_at"])
                ).total_seconds()
                took = f" in {seconds * 1000:.0f} ms"
            self.say(
                Text.assemble(
                    ("AZ  ", "bold cyan"),
                    f"{row.number} (status {message['status']}) ",
                    (tracking, _tracking_style(tracking)),
                    f"{took}: signed receipt from {message['to']}, delivery number "
                    f"{message['delivery_number']}",
                )
            )

    def _ru_changes(self, row: Row, at_ru: dict[str, Any] | None) -> None:
        status = at_ru["status"] if at_ru else None
        replaced_by = at_ru["replaced_by"] if at_ru else None
        if (status, replaced_by) != (row.ru_status, row.ru_replaced_by) and status is not None:
            self.say(
                Text.assemble(
                    ("RU  ", "bold magenta"),
                    f"{row.number} {'arrived' if row.ru_status is None else 'is now'}: ",
                    (status_label(status, replaced_by), "bold"),
                )
            )
        row.ru_status, row.ru_replaced_by = status, replaced_by

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Poll until every certificate is settled, or say which did not within ``timeout``."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL_INTERVAL) + 1):
            self.poll()
            if all(row.settled for row in self.day.rows) or time.monotonic() > deadline:
                break
            time.sleep(POLL_INTERVAL)
        for row in self.day.rows:
            if not row.settled:
                self.fail(
                    f"{row.number} did not settle within {timeout:g} s: at AZ "
                    f"{status_label(row.az_status, row.az_replaced_by)} / {row.tracking}, "
                    f"at RU {status_label(row.ru_status, row.ru_replaced_by)}"
                )

    def breathe(self) -> None:
        """A pause between moves, so a person can follow; polling all the while."""
        deadline = time.monotonic() + self.pace
        for _ in range(int(self.pace / POLL_INTERVAL) + 1):
            self.poll()
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)

    def issue(self, lot: Lot) -> None:
        body = self.write(
            f"issuing {lot.number}",
            "/api/v1/certificates",
            json=certificate(lot),
            headers={"Idempotency-Key": f"demo-issue-{lot.number}"},
        )
        if body is None:
            return
        self.add(body, lot)
        self.say(
            Text.assemble(
                ("AZ  ", "bold cyan"),
                f"az-fsa issued {lot.number} ({lot.type_code}, status 70): {goods(lot)} from "
                f"{lot.region}, truck {lot.truck}, seal {lot.seal}",
            )
        )

    def withdraw(self, number: str, reason: str) -> None:
        row = next((r for r in self.day.rows if r.number == number), None)
        if row is None:
            self.fail(f"withdrawing {number}: it was never issued")
            return
        body = self.write(
            f"withdrawing {number}",
            f"/api/v1/certificates/{row.az_id}/withdraw",
            json={"reason": reason},
            headers={"Idempotency-Key": f"demo-withdraw-{number}"},
        )
        if body is not None:
            self._az_changes(row, body)
            self.say(
                Text.assemble(
                    ("AZ  ", "bold cyan"), f"az-fsa withdrew {number} (status 40): {reason}"
                )
            )

    def replace(self, number: str, lot: Lot, reason: str) -> None:
        row = next((r for r in self.day.rows if r.number == number), None)
        if row is None:
            self.fail(f"replacing {number}: it was never issued")
            return
        body = self.write(
            f"replacing {number}",
            f"/api/v1/certificates/{row.az_id}/replace",
            json={"reason": reason, "certificate": certificate(lot)},
            headers={"Idempotency-Key": f"demo-replace-{number}"},
        )
        if body is None:
            return
        old = body.get("superseded") or {}
        row.az_status, row.az_replaced_by = old.get("status"), old.get("replaced_by")
        self.add(body, lot)
        self.say(
            Text.assemble(
                ("AZ  ", "bold cyan"),
                f"az-fsa replaced {number} by {lot.number} (notes ADRP, ADRPN, ADRPR, ADRD "
                f"added): {reason}",
            )
        )

    def hostile(self) -> None:
        """A billion-laughs file at the submit endpoint: refused fast, nothing stored."""
        try:
            answer = self.az.post(
                "/api/v1/certificates",
                content=BILLION_LAUGHS,
                headers={"Content-Type": "application/xml"},
            )
        except httpx.HTTPError as exc:
            self.fail(f"the hostile file: the AZ node did not answer ({exc})")
            return
        codes: list[str] = []
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            codes = [f["code"] for f in answer.json()["error"].get("findings", [])]
        if answer.status_code >= 400 and codes:
            self.day.hostile_refused = codes[0]
            self.say(
                Text.assemble(
                    ("AZ  ", "bold cyan"),
                    "a billion-laughs file sent as a certificate: refused with HTTP "
                    f"{answer.status_code} {_error_of(answer)}, finding ",
                    (codes[0], "bold"),
                    "; nothing stored",
                )
            )
        else:
            self.fail(f"the hostile file was not refused: HTTP {answer.status_code}")


def play(
    az_url: str,
    ru_url: str,
    tokens: dict[str, str],
    console: Console,
    *,
    pace: float = 0.0,
) -> Day:
    """Play the day against two running nodes; ``tokens`` holds az-fsa's and ru-rsn's."""
    day = Day()

    def client(url: str, agency: str) -> httpx.Client:
        return httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {tokens[agency]}"},
            trust_env=False,
            timeout=10.0,
        )

    with (
        client(az_url, "az-fsa") as az,
        client(ru_url, "ru-rsn") as ru,
        Live(board(day), console=console, auto_refresh=False) as live,
    ):
        moves = _Play(az, ru, live, day, pace)
        for lot in lots.LOTS:
            moves.issue(lot)
            moves.breathe()
        moves.settle()
        moves.withdraw(lots.WITHDRAWN, lots.WITHDRAWAL_REASON)
        moves.breathe()
        moves.replace(lots.REPLACED, lots.REPLACEMENT, lots.REPLACEMENT_REASON)
        moves.breathe()
        moves.hostile()
        moves.settle()
    return day
