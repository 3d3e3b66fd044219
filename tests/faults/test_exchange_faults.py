"""Faults that really happen: nodes killed -9, a hostile network, two workers on one database.

The nodes are real ``greenlane serve`` processes on loopback, each on its own
SQLite file (:mod:`tests.faults.nodes`); a kill is ``kill -9``, with no chance
to finish a request, flush or say goodbye. Between them, when a test wants a
hostile network, runs the fault proxy (:mod:`tests.faults.proxy`) in
one-request-per-connection mode, so every HTTP request of the node's keep-alive
client gets its own fault decision. Every random choice comes from one seeded
generator (``GREENLANE_TEST_FAULT_SEED`` replays another seed).

Whatever happens, the guarantees are the exchange issue's: every certificate
is stored at the receiver exactly once (one inbox row, one certificate, one
evidence entry per message), every sender row ends ``Delivered`` holding the
receiver's original receipt (byte for byte the one the receiver stored), and
both nodes' evidence logs verify.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, Integer, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from greenlane.api.app import create_app
from greenlane.corridor.agreement import load_corridor
from greenlane.corridor.scaffold import Mode, Scaffold
from greenlane.exchange import outbound
from greenlane.exchange.context import NodeContext, build_context
from greenlane.exchange.delivery import Worker, claim
from greenlane.exchange.peers import API, SIGNATURE_HEADER
from greenlane.store import migrate
from greenlane.store.engine import make_engine
from greenlane.store.models import Base, InboxMessage, OutboxMessage
from greenlane.trust.evidence import Kind, verify_log
from greenlane.trust.registry import DatabaseKeys

from .. import pg_harness
from ..exchange.harness import certificate_xml, context, free_port, scaffold
from .nodes import NodeProcess, outbox_states, submit_all, wait_until
from .proxy import FAULT_NAMES, FaultProxy, Faults

pytestmark = pytest.mark.faults

SEED = int(os.environ.get("GREENLANE_TEST_FAULT_SEED", "20250615"))
DELIVERED = "Delivered"
SETTLE_TIMEOUT = 300.0

# Every fault at once, about half the requests hit: a bad day on a long-distance link.
HOSTILE = Faults(
    refuse=0.06,
    drop_request=0.06,
    drop_response=0.10,
    truncate_response=0.08,
    delay=0.10,
    http_502=0.06,
    min_delay=0.02,
    max_delay=0.3,
)
# The same for pull, with shorter holds: the poller asks one request at a time, so every
# delay adds up, where the push worker's eight concurrent sends overlap theirs.
HOSTILE_SEQUENTIAL = dataclasses.replace(HOSTILE, max_delay=0.1)


# -- the corridor of processes -----------------------------------------------------------------


def endpoint_port(made: Scaffold, node: str) -> int:
    """The port of ``node``'s endpoint in the corridor file (a proxy's, when one stands in)."""
    for country in load_corridor(made.corridor_file).countries.values():
        for entry in country.nodes:
            if entry.id == node:
                port = httpx.URL(entry.endpoint).port
                assert port is not None
                return port
    raise KeyError(node)


Launch = Callable[..., NodeProcess]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Make node processes for a test; whatever still runs at its end is stopped."""
    started: list[NodeProcess] = []

    def make(made: Scaffold, node: str, *, port: int, **env: str) -> NodeProcess:
        process = NodeProcess(made, node, port=port, logs=tmp_path / "logs", env=env)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def diagnosis(az: NodeProcess, ru: NodeProcess, proxy: FaultProxy | None = None) -> str:
    """What the nodes say when something did not settle: states, errors, logs."""
    lines = [f"seed {SEED}", f"AZ outbox: {outbox_states(az)}"]
    with contextlib.suppress(sqlite3.Error):
        stored = ru.count("SELECT count(*) FROM inbox")
        lines.append(f"RU inbox rows: {stored}")
        errors = az.query(
            "SELECT last_error, count(*) FROM outbox WHERE state != ? "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
            (DELIVERED,),
        )
        lines.append(f"AZ last errors of undelivered rows: {errors}")
    if proxy is not None:
        lines.append(f"proxy: {proxy.stats}")
    for node in (az, ru):
        lines.append(f"--- {node.node} log (last lines) ---\n{node.tail()}")
    return "\n".join(lines)


def all_delivered(az: NodeProcess, count: int) -> Callable[[], bool]:
    return lambda: outbox_states(az) == {DELIVERED: count}


def duplicates_answered(ru: NodeProcess) -> int:
    """Messages RU received again after storing them (a retry signed after RU recorded it).

    ``first_at`` is when RU first stored the message and ``last_attempt_at`` the
    sender's time of the latest attempt: only a resend made after the first
    arrival puts the latter after the former.
    """
    return ru.count("SELECT count(*) FROM seen_messages WHERE last_attempt_at > first_at")


def assert_exactly_once(az: NodeProcess, ru: NodeProcess, numbers: list[str]) -> None:
    """Each number stored once at RU, and AZ holds for it RU's original receipt."""
    count = len(numbers)
    inbox = ru.query(
        "SELECT message_id, sender_node, document_number, id, state, quarantined, receipt "
        "FROM inbox"
    )
    assert len(inbox) == count, f"RU stored {len(inbox)} envelopes for {count} certificates"
    assert len({(row[1], row[0]) for row in inbox}) == count, "a message stored twice"
    assert sorted(row[2] for row in inbox) == sorted(numbers), "a number missing or twice"
    assert {(row[4], row[5]) for row in inbox} == {(DELIVERED, 0)}, "a valid payload refused"
    received = ru.query("SELECT number FROM certificates WHERE direction = 'received'")
    assert sorted(row[0] for row in received) == sorted(numbers)
    by_message = {row[0]: row for row in inbox}

    outbox = az.query("SELECT message_id, state, delivery_number, receipt FROM outbox")
    assert len(outbox) == count
    for message_id, state, delivery_number, receipt in outbox:
        assert state == DELIVERED, f"{message_id} is {state}"
        stored = by_message[message_id]
        assert delivery_number == stored[3], f"{message_id}: another delivery number"
        assert bytes(receipt) == bytes(stored[6]), f"{message_id}: not RU's original receipt"

    # The evidence says the same, once per message on each side.
    kinds = dict(ru.query("SELECT kind, count(*) FROM evidence_entries GROUP BY 1"))
    assert kinds.get(Kind.DOCUMENT_RECEIVED) == count
    assert kinds.get(Kind.RECEIPT) == count
    kinds = dict(az.query("SELECT kind, count(*) FROM evidence_entries GROUP BY 1"))
    assert kinds.get(Kind.DOCUMENT_SENT) == count
    assert kinds.get(Kind.RECEIPT) == count


def assert_logs_verify(made: Scaffold) -> None:
    """Both nodes' evidence logs recompute and hold against their checkpoints."""
    for node, folder in made.nodes.items():
        engine = make_engine(f"sqlite:///{folder / 'greenlane.db'}")
        try:
            with Session(engine) as session:
                report = verify_log(session, node, DatabaseKeys(session))
        finally:
            engine.dispose()
        assert report.ok, f"{node}: {report.problems[:5]}"
        assert report.size > 0


def assert_no_crashes(*nodes: NodeProcess) -> None:
    """No node logged a traceback: every fault was handled, none crashed a request or a loop."""
    for node in nodes:
        assert node.errors() == [], f"{node.node} crashed somewhere:\n{node.tail(80)}"


def attempts(az: NodeProcess) -> int:
    return az.count("SELECT coalesce(sum(attempts), 0) FROM outbox")


def stored_at_least(
    ru: NodeProcess, mark: int, meanwhile: Future[Any] | None = None
) -> Callable[[], bool]:
    """True once RU's inbox holds ``mark`` envelopes; re-raises if ``meanwhile`` failed."""

    def reached() -> bool:
        if meanwhile is not None and meanwhile.done():
            meanwhile.result()  # a failed submission ends the wait at once
        return ru.count("SELECT count(*) FROM inbox") >= mark

    return reached


def kill_points(rng: random.Random, count: int, kills: int) -> list[int]:
    """Distinct progress marks (RU inbox sizes) between 5 % and 85 % of the way."""
    return sorted(rng.sample(range(count // 20, count * 17 // 20), kills))


# -- 1. the receiver killed ----------------------------------------------------------------------


def test_receiver_killed_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, launch: Launch
) -> None:
    """kill -9 of RU four times while 2,000 certificates are pushed: each arrives exactly once."""
    count, kills = 2000, 4
    rng = random.Random(SEED)
    made = scaffold(tmp_path / "corridor")
    az = launch(made, "az-node", port=endpoint_port(made, "az-node")).start()
    ru = launch(made, "ru-node", port=endpoint_port(made, "ru-node")).start()
    numbers = [f"AZ/K9R/{i:05d}" for i in range(count)]
    token = made.tokens("az-node")["az-fsa"]

    with ThreadPoolExecutor(1) as background:
        submitting = background.submit(submit_all, az.url, token, numbers, workers=3)
        for mark in kill_points(rng, count, kills):
            wait_until(
                stored_at_least(ru, mark, submitting),
                timeout=SETTLE_TIMEOUT,
                what=f"RU storing {mark} envelopes",
                interval=0.02,
                diagnose=lambda: diagnosis(az, ru),
            )
            time.sleep(rng.uniform(0, 0.2))
            ru.kill()
            time.sleep(rng.uniform(0.1, 1.0))  # AZ's attempts meanwhile find nobody listening
            ru.start()
        submitting.result(timeout=SETTLE_TIMEOUT)

    wait_until(
        all_delivered(az, count),
        timeout=SETTLE_TIMEOUT,
        what=f"all {count} Delivered at AZ",
        interval=0.2,
        diagnose=lambda: diagnosis(az, ru),
    )
    az.stop()
    ru.stop()
    assert ru.kills == kills
    assert attempts(az) > count, "no attempt failed: the kills did not hit a delivery"
    assert_exactly_once(az, ru, numbers)
    assert_logs_verify(made)
    assert_no_crashes(az, ru)


# -- 2. the sender killed --------------------------------------------------------------------


def expire_leases(node: NodeProcess) -> int:
    """Let the claims of a dead node run out now rather than in 30 s; how many there were.

    A worker's claim is a lease (``GREENLANE_DELIVERY_LEASE_SECONDS``, 30 s by default)
    so that nobody else sends the envelope meanwhile; a worker killed mid-send leaves
    it, and a restarted node resends only when it has run out. Waiting it out is what
    a real node does; the test moves the clock of the leases instead, while the node
    is down.
    """
    with contextlib.closing(sqlite3.connect(node.database, timeout=10)) as db, db:
        return db.execute(
            "UPDATE outbox SET claimed_until = NULL "
            "WHERE state = 'PendingDelivery' AND claimed_until IS NOT NULL"
        ).rowcount


def test_sender_killed_between_sending_and_recording_gets_the_original_receipts(
    tmp_path: Path, launch: Launch
) -> None:
    """kill -9 of AZ with envelopes in flight: it resends them and RU answers the first receipts."""
    count, kills = 200, 3
    rng = random.Random(SEED + 2)
    ru_port = free_port()
    # Every request and response is held 50-250 ms, so a kill lands with envelopes
    # in flight: sent, maybe stored by RU, but their receipts not yet recorded.
    slow = Faults(delay=1.0, min_delay=0.05, max_delay=0.25)
    with FaultProxy(ru_port, slow, seed=SEED, one_request_per_connection=True) as proxy:
        made = scaffold(tmp_path / "corridor", ports=(free_port(), proxy.port))
        az = launch(made, "az-node", port=endpoint_port(made, "az-node")).start()
        ru = launch(made, "ru-node", port=ru_port)
        numbers = [f"AZ/K9S/{i:05d}" for i in range(count)]
        submit_all(az.url, made.tokens("az-node")["az-fsa"], numbers, workers=3)
        ru.start()
        in_flight = 0
        for mark in kill_points(rng, count, kills):
            wait_until(
                stored_at_least(ru, mark),
                timeout=SETTLE_TIMEOUT,
                what=f"RU storing {mark} envelopes",
                interval=0.02,
                diagnose=lambda: diagnosis(az, ru, proxy),
            )
            time.sleep(rng.uniform(0, 0.2))
            az.kill()
            in_flight += expire_leases(az)
            az.start()
        wait_until(
            all_delivered(az, count),
            timeout=SETTLE_TIMEOUT,
            what=f"all {count} Delivered at AZ",
            interval=0.2,
            diagnose=lambda: diagnosis(az, ru, proxy),
        )
        az.stop()
        ru.stop()
    assert az.kills == kills
    assert in_flight > 0, "no kill caught an envelope between sending and its receipt"
    assert duplicates_answered(ru) > 0, "RU never saw an envelope again: nothing was resent"
    assert_exactly_once(az, ru, numbers)
    assert_logs_verify(made)
    assert_no_crashes(az, ru)


# -- 3. and 4. a hostile network, push and pull ----------------------------------------------


def assert_every_fault_struck(proxy: FaultProxy) -> None:
    stats = proxy.stats
    struck = {name: getattr(stats, name) for name in FAULT_NAMES}
    assert all(struck.values()), f"not every fault happened: {struck}"


def test_push_through_a_hostile_network_delivers_exactly_once(
    tmp_path: Path, launch: Launch
) -> None:
    """Dropped, cut, delayed, refused and 502-answered pushes: each certificate arrives once."""
    count = 300
    ru_port = free_port()
    with FaultProxy(ru_port, HOSTILE, seed=SEED, one_request_per_connection=True) as proxy:
        made = scaffold(tmp_path / "corridor", ports=(free_port(), proxy.port))
        ru = launch(made, "ru-node", port=ru_port).start()
        az = launch(made, "az-node", port=endpoint_port(made, "az-node")).start()
        numbers = [f"AZ/NET/{i:05d}" for i in range(count)]
        submit_all(az.url, made.tokens("az-node")["az-fsa"], numbers, workers=3)
        wait_until(
            all_delivered(az, count),
            timeout=SETTLE_TIMEOUT,
            what=f"all {count} Delivered at AZ",
            interval=0.2,
            diagnose=lambda: diagnosis(az, ru, proxy),
        )
        assert_every_fault_struck(proxy)
        az.stop()
        ru.stop()
    assert duplicates_answered(ru) > 0, "no lost acknowledgement was resent"
    assert_exactly_once(az, ru, numbers)
    assert_logs_verify(made)
    assert_no_crashes(az, ru)


def test_pull_through_a_hostile_network_delivers_exactly_once(
    tmp_path: Path, launch: Launch
) -> None:
    """RU pulls from AZ through the same faults: each certificate arrives once, all Delivered."""
    count = 200
    az_port = free_port()
    hostile = HOSTILE_SEQUENTIAL
    with FaultProxy(az_port, hostile, seed=SEED + 4, one_request_per_connection=True) as proxy:
        delivery: tuple[Mode, Mode] = ("push", "pull")
        made = scaffold(tmp_path / "corridor", ports=(proxy.port, free_port()), delivery=delivery)
        az = launch(made, "az-node", port=az_port).start()
        ru = launch(
            made,
            "ru-node",
            port=endpoint_port(made, "ru-node"),
            GREENLANE_PULL_INTERVAL_SECONDS="0.05",
        ).start()
        numbers = [f"AZ/PUL/{i:05d}" for i in range(count)]
        submit_all(az.url, made.tokens("az-node")["az-fsa"], numbers, workers=3)
        wait_until(
            all_delivered(az, count),
            timeout=SETTLE_TIMEOUT,
            what=f"all {count} Delivered at AZ",
            interval=0.2,
            diagnose=lambda: diagnosis(az, ru, proxy),
        )
        assert_every_fault_struck(proxy)
        az.stop()
        ru.stop()
    assert az.count("SELECT count(*) FROM outbox WHERE mode != 'pull'") == 0
    assert duplicates_answered(ru) > 0, "no lost fetch or acknowledgement was fetched again"
    assert_exactly_once(az, ru, numbers)
    assert_logs_verify(made)
    assert_no_crashes(az, ru)


# -- 5. PostgreSQL: two delivery workers on one database -------------------------------------


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make a fresh database on the test cluster; skipped where PostgreSQL is not installed."""
    if not os.environ.get("GREENLANE_TEST_POSTGRES_URL"):
        try:
            pg_harness._bindir()
        except pg_harness.PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL is not installed here: {exc}")
    base = make_url(request.getfixturevalue("postgres_url"))

    def create(name: str) -> str:
        import psycopg

        with psycopg.connect(
            host=base.host,
            port=base.port,
            user=base.username,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return base.set(database=name).render_as_string(hide_password=False)

    return create


def az_on_postgres(made: Scaffold, url: str) -> None:
    """Move the scaffolded AZ node's database (registry, keys, tokens, log) to PostgreSQL."""
    source = make_engine(f"sqlite:///{made.nodes['az-node'] / 'greenlane.db'}")
    target = make_engine(url)
    try:
        migrate.upgrade(target)
        with source.connect() as reading, target.begin() as writing:
            for table in Base.metadata.sorted_tables:
                rows = [dict(row._mapping) for row in reading.execute(select(table))]
                if rows:
                    writing.execute(insert(table), rows)
            for table in Base.metadata.sorted_tables:
                column = table.c.get("id")
                if column is not None and column.primary_key and isinstance(column.type, Integer):
                    following = select(func.coalesce(func.max(column), 0) + 1)
                    sequence = func.pg_get_serial_sequence(table.name, "id")
                    writing.execute(
                        select(func.setval(sequence, following.scalar_subquery(), False))
                    )
    finally:
        source.dispose()
        target.dispose()


def az_context(made: Scaffold, url: str) -> NodeContext:
    settings = made.settings(
        "az-node",
        database_url=url,
        delivery_backoff_seconds=0.05,
        delivery_backoff_max_seconds=1.0,
        delivery_max_attempts=1000,
    )
    return build_context(settings, load_corridor(made.corridor_file), "az-node")


def submit_in_process(ctx: NodeContext, numbers: list[str]) -> None:
    for index, number in enumerate(numbers):
        with ctx.sessions() as session, session.begin():
            outbound.submit(session, ctx, agency="az-fsa", raw=certificate_xml(number, index))


class ClaimRendezvous:
    """Makes two claims overlap: each of two threads, after its first claim's SELECT, waits
    inside its transaction until the other has run its SELECT too.

    With ``FOR UPDATE SKIP LOCKED`` both go on at once with disjoint rows. Without any
    lock both choose the same rows; with a lock that does not skip, the second SELECT
    waits for the first transaction, which waits here: the rendezvous times out and
    :attr:`met` is false.
    """

    def __init__(self, engines: list[Engine], thread_prefix: str) -> None:
        self.engines = engines
        self.prefix = thread_prefix
        self.barrier = threading.Barrier(2, timeout=15)
        self._arrived: set[int | None] = set()
        self._lock = threading.Lock()

    def _hold(self, connection: Any, cursor: Any, statement: str, *rest: Any) -> None:
        thread = threading.current_thread()
        if not (statement.startswith("SELECT outbox.id") and thread.name.startswith(self.prefix)):
            return
        with self._lock:
            if thread.ident in self._arrived or len(self._arrived) == 2:
                return
            self._arrived.add(thread.ident)
        self.barrier.wait()

    @property
    def met(self) -> bool:
        return len(self._arrived) == 2 and not self.barrier.broken

    def __enter__(self) -> ClaimRendezvous:
        for engine in self.engines:
            event.listen(engine, "after_cursor_execute", self._hold)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for engine in self.engines:
            event.remove(engine, "after_cursor_execute", self._hold)


@pytest.mark.postgres
def test_overlapping_claims_on_postgresql_take_disjoint_envelopes(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    """Two claims whose transactions overlap skip each other's locked rows instead of sharing."""
    made = scaffold(tmp_path / "corridor")
    url = postgres("greenlane_faults_claims")
    az_on_postgres(made, url)
    ctx = az_context(made, url)
    try:
        submit_in_process(ctx, [f"AZ/CLM/{i:03d}" for i in range(15)])
        with (
            ClaimRendezvous([ctx.engine], "claimer") as rendezvous,
            ThreadPoolExecutor(2, thread_name_prefix="claimer") as pool,
        ):
            claims = [pool.submit(claim, ctx, 10) for _ in range(2)]
            first, second = (c.result(timeout=30) for c in claims)

        assert rendezvous.met, "the second claim waited for the first's locks"
        assert first, "the first claim took nothing"
        assert second, "the second claim took nothing"
        assert not set(first) & set(second), f"both claimed {sorted(set(first) & set(second))}"
        with ctx.sessions() as session:
            rows = session.execute(select(OutboxMessage.id, OutboxMessage.attempts)).all()
        assert sorted(first + second) == sorted(row.id for row in rows)
        assert {row.attempts for row in rows} == {1}
    finally:
        ctx.engine.dispose()


class Arrivals:
    """ASGI middleware in front of RU that counts every pushed envelope by message id.

    It also notes a message that arrives while another push of it is still being
    answered: two workers sending one envelope at the same time.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.active: Counter[str] = Counter()
        self.concurrent: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if scope.get("method") != "POST" or path not in (
            f"{API}/envelopes",
            f"{API}/envelopes/batch",
        ):
            await self.app(scope, receive, send)
            return
        if path == f"{API}/envelopes":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            message_ids = [signed_message_id(headers.get(SIGNATURE_HEADER.lower(), ""))]
        else:  # a batch: read the body to see which envelopes it carries, then replay it
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            entries = json.loads(body)["Envelopes"]
            message_ids = [signed_message_id(e["Signature"]) for e in entries]
            replayed = False

            async def receive() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return {"type": "http.disconnect"}
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

        for message_id in message_ids:
            self.counts[message_id] += 1  # one event loop: no lock needed
            if self.active[message_id]:
                self.concurrent.append(message_id)
            self.active[message_id] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            for message_id in message_ids:
                self.active[message_id] -= 1


def signed_message_id(token: str) -> str:
    """The ``gl.mid`` of a detached JWS's protected header (read, not verified: RU verifies)."""
    protected = token.split(".", 1)[0]
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    return str(header["gl.mid"])


@contextlib.contextmanager
def serve_app(app: Any, port: int) -> Iterator[None]:
    """Serve an ASGI app on 127.0.0.1:port in a thread until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(15)


def pushed(ctx: NodeContext) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "greenlane_delivery_attempts_total", {"mode": "push"}
    )
    return value or 0.0


@pytest.mark.postgres
def test_two_workers_on_one_postgresql_database_send_each_envelope_once(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    """Two delivery workers (two engines) on one PostgreSQL outbox never push one envelope twice."""
    count = 150
    made = scaffold(tmp_path / "corridor")
    url = postgres("greenlane_faults_workers")
    az_on_postgres(made, url)
    contexts = [az_context(made, url), az_context(made, url)]
    ru = context(made, "ru-node")
    arrivals = Arrivals(create_app(ru, background=False))
    engines: list[Engine] = [c.engine for c in contexts]
    try:
        submit_in_process(contexts[0], [f"AZ/PG2/{i:04d}" for i in range(count)])

        def delivered() -> bool:
            with contexts[0].sessions() as session:
                states = dict(
                    session.execute(
                        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
                    ).all()
                )
            return states == {DELIVERED: count}

        with (
            serve_app(arrivals, endpoint_port(made, "ru-node")),
            ClaimRendezvous(engines, "greenlane-delivery") as rendezvous,
        ):
            # The workers' first claims are made to overlap; the later ones race freely.
            workers = [Worker(c, concurrency=4, batch=8).start() for c in contexts]
            try:
                wait_until(delivered, timeout=SETTLE_TIMEOUT, what="all Delivered", interval=0.2)
            finally:
                for worker in workers:
                    worker.stop()
    finally:
        for engine in engines:
            engine.dispose()

    assert rendezvous.met, "the workers' first claims did not overlap"
    assert arrivals.concurrent == [], "one envelope pushed by two workers at the same time"
    assert len(arrivals.counts) == count
    assert set(arrivals.counts.values()) == {1}, "an envelope pushed more than once"
    assert all(pushed(c) > 0 for c in contexts), "one worker sent nothing: no contention shown"
    assert sum(pushed(c) for c in contexts) == count
    with ru.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(InboxMessage))
    ru.engine.dispose()
    assert stored == count
