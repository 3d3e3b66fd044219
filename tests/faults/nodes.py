"""Real node processes for the fault tests: `greenlane serve` started, killed -9, restarted.

A :class:`NodeProcess` runs one node of a scaffolded corridor as a child
process on a port of its own (which need not be the one in the corridor file:
a fault proxy can sit on that one). Its output goes to a log file in the
test's folder, so a full pipe never blocks it and a failure can show the tail.
Everything waits a bounded time.

The helpers read each node's SQLite file directly, read-only, with the
``sqlite3`` module: a query never takes the write lock the node's own
connections take at BEGIN, so the test can watch a node without slowing it.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from greenlane.cli.demo_nodes import node_environment, serve_command
from greenlane.corridor.scaffold import Scaffold

from ..exchange.harness import certificate_xml

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0

FAST_RETRIES: Mapping[str, str] = {
    # Quick recovery: a retry after 25-50 ms, then twice that each time up to 0.5-1 s,
    # and no envelope given up on within a test (a partner down for a few seconds costs
    # a few attempts, not the message).
    "GREENLANE_DELIVERY_BACKOFF_SECONDS": "0.05",
    "GREENLANE_DELIVERY_BACKOFF_MAX_SECONDS": "1.0",
    "GREENLANE_DELIVERY_MAX_ATTEMPTS": "1000",
    "GREENLANE_LOG_LEVEL": "WARNING",
}


class NodeProcess:
    """One ``greenlane serve`` child process; start, kill -9 and restart it any number of times."""

    def __init__(
        self,
        made: Scaffold,
        node: str,
        *,
        port: int,
        logs: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.made = made
        self.node = node
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.logs = logs
        self.env = {**FAST_RETRIES, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def _environment(self) -> dict[str, str]:
        return node_environment(**self.env)

    @property
    def log_file(self) -> Path:
        return self.logs / f"{self.node}.log"

    def start(self, timeout: float = START_TIMEOUT) -> NodeProcess:
        """Start the node and wait until its /health answers."""
        if self.running:
            raise RuntimeError(f"{self.node} is already running")
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                serve_command(self.made.corridor_file, self.node, port=self.port),
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.node} exited with {self.process.returncode} at start:\n"
                        + self.tail()
                    )
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"{self.node} did not answer /health in {timeout} s:\n" + self.tail()
                    )
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, whatever was in flight is cut."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.kills += 1
        self.process.wait(STOP_TIMEOUT)
        self.process = None

    def stop(self) -> None:
        """A clean stop (SIGTERM), or SIGKILL if it does not end in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Lines of the log that say something crashed (tracebacks), for the report."""
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return [line for line in text.splitlines() if re.search(r"Traceback|CRITICAL", line)]

    # -- reading the node's database ------------------------------------------------------

    @property
    def database(self) -> Path:
        return self.made.nodes[self.node] / "greenlane.db"

    def query(self, sql: str, parameters: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return query(self.database, sql, parameters)

    def count(self, sql: str, parameters: Iterable[Any] = ()) -> int:
        return int(self.query(sql, parameters)[0][0])


def query(database: Path, sql: str, parameters: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Read a node's SQLite file without taking its write lock (retried while it is busy)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
                return list(db.execute(sql, tuple(parameters)))
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def outbox_states(node: NodeProcess) -> dict[str, int]:
    return dict(node.query("SELECT state, count(*) FROM outbox GROUP BY 1"))


def submit_all(
    url: str,
    token: str,
    numbers: list[str],
    *,
    workers: int = 4,
    timeout: float = 300.0,
) -> list[int]:
    """Submit one certificate per number over the agency API; the certificate ids, in order.

    A submission refused or lost (the node answers 5xx or the connection breaks) is
    retried with the same Idempotency-Key, as an agency's client would, a bounded number
    of times.
    """
    deadline = time.monotonic() + timeout
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)

    with httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
        trust_env=False,
        timeout=30.0,
        limits=limits,
    ) as client:

        def one(index: int) -> int:
            number = numbers[index]
            body = certificate_xml(number, lot=index)
            last = ""
            for _ in range(20):
                if time.monotonic() > deadline:
                    break
                try:
                    response = client.post(
                        "/api/v1/certificates",
                        content=body,
                        headers={"Idempotency-Key": f"fault-test-{number}"},
                    )
                except httpx.HTTPError as exc:
                    last = repr(exc)
                    time.sleep(0.2)
                    continue
                if response.status_code in (200, 201):
                    return int(response.json()["id"])
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code < 500:
                    break
                time.sleep(0.2)
            raise AssertionError(f"certificate {number} was not accepted: {last}")

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, range(len(numbers))))


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    diagnose: Callable[[], str] | None = None,
) -> None:
    """Poll ``predicate`` until true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = diagnose() if diagnose is not None else ""
            raise AssertionError(f"{what}: not reached within {timeout} s\n{detail}")
        time.sleep(interval)
