"""Exchange between two nodes: ingest over HTTP beside the bare pipeline, push latency, stages.

Run by ``make bench`` (:mod:`bench.run`); ``python -m bench.exchange [COUNT]`` runs this part
alone and prints its results. Everything happens on loopback, with the nodes as separate
processes (``greenlane serve``), so the load generator and the node do not share a GIL:

- **ingest**: ``COUNT`` distinct certificates, signed by the AZ agency's key in envelopes
  signed by az-node (all prepared before the clock starts: signing is the sender's cost),
  pushed over several connections to a running RU node, which verifies, validates, stores
  and receipts each one. Every receipt is verified afterwards, outside the timing.
- **bare pipeline**: the same envelopes in a tight loop with no HTTP and no ORM: JWS verify,
  envelope decode, hardened parse, structure and rules, XML-DSig verify and trust decision,
  one SQLite insert and commit per document into the same schema.
- **stages**: :func:`greenlane.exchange.inbound.receive` in this process on the same
  envelopes, each stage timed (exclusive of the stages it calls); HTTP is what the node
  process spent per envelope beyond that.
- **latency**: submit at AZ to ``Delivered`` at AZ, open loop at fixed offered rates.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, select

from greenlane import validation
from greenlane.cli import demo_certificates
from greenlane.cli.demo_nodes import node_environment, serve_command
from greenlane.corridor.agreement import load_corridor
from greenlane.corridor.scaffold import Scaffold, write_example
from greenlane.errors import GreenlaneError
from greenlane.exchange import certificates as certificate_rows
from greenlane.exchange import envelope as envelope_module
from greenlane.exchange import inbound, peers
from greenlane.exchange.context import NodeContext, build_context
from greenlane.exchange.envelope import Envelope, decode, encode, make_envelope, sign_attempt
from greenlane.exchange.receipts import verify_receipt
from greenlane.findings import has_errors
from greenlane.sps import amend, checks
from greenlane.sps.jsonform import from_json
from greenlane.sps.writer import write_canonical
from greenlane.store.models import StoredKey
from greenlane.trust import evidence, registry
from greenlane.trust.keys import RegisteredKey, Role
from greenlane.trust.messages import verify_message
from greenlane.trust.xmldsig import judge_trust, sign_enveloped, verify_parsed

COUNT = 3000
ROUNDS = 3
CONNECTIONS = 8
BATCH = 16
"""Envelopes per request in the batched ingest (the delivery worker's PER_REQUEST)."""
BATCH_CONNECTIONS = 4
WORKERS = 2
"""Server processes of the receiving node in the batched ingest: one per core here."""
WARMUP = 24
RUN_SECONDS = 120.0
"""Upper bound on any one timed run; the JWS freshness window (5 min) must hold over it."""
LATENCY_RATES = (50, 200)
LATENCY_SECONDS = 10.0
DRAIN_SECONDS = 30.0
SUBMIT_TIMEOUT = 60.0
START_SECONDS = 30.0


# --- the documents and envelopes --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def certificates(count: int, prefix: str) -> list[bytes]:
    """``count`` distinct unsigned AZ -> RU certificates: the demo's lots in turn (phytosanitary
    and veterinary), each with a number and net weight of its own."""
    lots = demo_certificates.LOTS
    out = []
    for i in range(count):
        lot = replace(lots[i % len(lots)], number=f"{prefix}-{i:06d}", net_kg=str(1000 + i))
        out.append(write_canonical(from_json(demo_certificates.certificate(lot))))
    return out


@dataclass
class Corridor:
    """A scaffolded two-node corridor, with its AZ context for signing and checking receipts."""

    made: Scaffold
    az: NodeContext

    @classmethod
    def create(cls, directory: Path) -> Corridor:
        made = write_example(directory, ports=(free_port(), free_port()))
        az = build_context(made.settings("az-node"), load_corridor(made.corridor_file), "az-node")
        return cls(made, az)

    def database(self, node: str) -> Path:
        return self.made.nodes[node] / "greenlane.db"

    def context(self, node: str, database: Path) -> NodeContext:
        settings = self.made.settings(node, database_url=f"sqlite:///{database}")
        return build_context(settings, load_corridor(self.made.corridor_file), node)


@dataclass(frozen=True)
class Outgoing:
    envelope: Envelope
    encoded: bytes


def envelopes(corridor: Corridor, documents: list[bytes]) -> list[Outgoing]:
    """Each certificate signed by az-fsa (XML-DSig) in its envelope for ru-node."""
    az = corridor.az
    with az.sessions() as session:
        agency = az.signer(session, "az-fsa")
    now = az.clock()
    out = []
    for raw in documents:
        facts = validation.validate_bytes(raw, "bench.xml", az.settings)
        assert facts.document is not None
        assert not has_errors(facts.findings), facts.findings
        signed = sign_enveloped(raw, agency)
        fields = amend.facts(facts.document.root)
        assert fields.number is not None
        assert fields.type_code is not None
        envelope = make_envelope(
            from_country="AZ",
            to_country="RU",
            sender_node="az-node",
            receiver_node="ru-node",
            document_type=fields.type_code,
            document_status="70",
            document_number=fields.number,
            payload=signed,
            media_type="application/xml",
            created_at=now,
            types=az.types,
        )
        out.append(Outgoing(envelope, encode(envelope, signed)))
    return out


def tokens(corridor: Corridor, items: list[Outgoing]) -> list[str]:
    """One sending attempt of each envelope, signed now by az-node (fresh for the window)."""
    az = corridor.az
    with az.sessions() as session:
        node = az.signer(session, "az-node")
    now = az.clock()
    return [sign_attempt(node, o.envelope, o.encoded, attempt_at=now) for o in items]


def rounds(items: list[Any]) -> list[list[Any]]:
    """The items in ``ROUNDS`` consecutive parts of equal size."""
    size = len(items) // ROUNDS
    return [items[i * size : (i + 1) * size] for i in range(ROUNDS)]


# --- a node as a process ----------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its live children (Linux /proc), else None."""
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # itself, or its child
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


@dataclass
class NodeProcess:
    url: str
    process: subprocess.Popen[bytes]

    def cpu(self) -> float | None:
        return _cpu_seconds(self.process.pid)


@contextmanager
def serve(corridor: Corridor, node: str, log: Path, workers: int = 1) -> Iterator[NodeProcess]:
    """``greenlane serve`` for ``node`` until the block ends; its output goes to ``log``."""
    url = _endpoint(corridor, node)
    port = httpx.URL(url).port
    assert port is not None
    with log.open("wb") as output:
        process = subprocess.Popen(
            serve_command(corridor.made.corridor_file, node, port=port, workers=workers),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=node_environment(),
        )
        try:
            _wait_healthy(url, process, log)
            yield NodeProcess(url, process)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _endpoint(corridor: Corridor, node: str) -> str:
    return corridor.az.peer(node).endpoint.rstrip("/")


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"node at {url} exited: {log.read_text()[-2000:]}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"node at {url} not healthy within {START_SECONDS} s")


# --- ingest over HTTP -------------------------------------------------------------------------


@dataclass
class Pushed:
    status: int
    receipt: bytes
    token: str


async def _push(url: str, items: list[tuple[bytes, str]], connections: int) -> list[Pushed | None]:
    """POST every envelope, ``connections`` at a time; None for those left at ``RUN_SECONDS``."""
    target = f"{url}{peers.API}/envelopes"
    results: list[Pushed | None] = [None] * len(items)
    deadline = time.monotonic() + RUN_SECONDS
    position = iter(range(len(items)))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:

        async def sender() -> None:
            for i in position:
                if time.monotonic() > deadline:
                    return
                data, token = items[i]
                response = await client.post(
                    target,
                    content=data,
                    headers={
                        peers.SIGNATURE_HEADER: token,
                        "Content-Type": peers.ENVELOPE_MEDIA_TYPE,
                    },
                )
                results[i] = Pushed(
                    response.status_code,
                    response.content,
                    response.headers.get(peers.SIGNATURE_HEADER, ""),
                )

        await asyncio.gather(*(sender() for _ in range(connections)))
    return results


async def _push_batched(
    url: str, items: list[tuple[bytes, str]], connections: int, size: int = BATCH
) -> list[Pushed | None]:
    """POST the envelopes ``size`` at a time to the batch endpoint, ``connections`` at once."""
    target = f"{url}{peers.API}/envelopes/batch"
    results: list[Pushed | None] = [None] * len(items)
    deadline = time.monotonic() + RUN_SECONDS
    position = iter(range(0, len(items), size))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(trust_env=False, timeout=60, limits=limits) as client:

        async def sender() -> None:
            for start in position:
                if time.monotonic() > deadline:
                    return
                chunk = items[start : start + size]
                body = {
                    "Envelopes": [
                        {"Envelope": base64.b64encode(data).decode(), "Signature": token}
                        for data, token in chunk
                    ]
                }
                response = await client.post(target, json=body)
                if response.status_code != 200:
                    continue
                for offset, answer in enumerate(response.json()["Results"]):
                    if "Receipt" in answer:
                        results[start + offset] = Pushed(
                            200, base64.b64decode(answer["Receipt"]), answer["Signature"]
                        )

        await asyncio.gather(*(sender() for _ in range(connections)))
    return results


def ingest(
    corridor: Corridor, items: list[Outgoing], log: Path, *, batched: bool = False
) -> dict[str, Any]:
    """Push ``items`` to a running RU node, in rounds; then verify every receipt.

    ``batched``: ``BATCH`` envelopes per request to the batch endpoint, as the
    delivery worker sends when several are due; otherwise one per request.
    """
    warmup, measured = items[:WARMUP], items[WARMUP:]
    rates: list[float] = []
    answers: list[tuple[Outgoing, Pushed]] = []
    with serve(corridor, "ru-node", log, WORKERS if batched else 1) as node:
        asyncio.run(
            _push(node.url, list(zip(_encoded(warmup), tokens(corridor, warmup), strict=True)), 4)
        )
        cpu_before, client_before, started = node.cpu(), time.process_time(), time.perf_counter()
        for part in rounds(measured):
            pairs = list(zip(_encoded(part), tokens(corridor, part), strict=True))
            round_started = time.perf_counter()
            if batched:
                pushed = asyncio.run(_push_batched(node.url, pairs, BATCH_CONNECTIONS))
            else:
                pushed = asyncio.run(_push(node.url, pairs, CONNECTIONS))
            ok = sum(p is not None and p.status == 200 for p in pushed)
            rates.append(ok / (time.perf_counter() - round_started))
            answers.extend((o, p) for o, p in zip(part, pushed, strict=True) if p is not None)
        wall = time.perf_counter() - started
        cpu_after, client_cpu = node.cpu(), time.process_time() - client_before
    verified = _verified_receipts(corridor, answers)
    node_cpu = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    sent = len(answers)
    return {
        "rate": statistics.median(rates),
        "rates": [round(r, 1) for r in rates],
        "sent": sent,
        "receipts_verified": verified,
        "node_cpu_ms_per_envelope": node_cpu / sent * 1000 if node_cpu else None,
        "node_cpu_share": node_cpu / wall if node_cpu else None,
        "client_cpu_ms_per_envelope": client_cpu / sent * 1000,
        "wall_ms_per_envelope": wall / sent * 1000,
    }


def _encoded(items: list[Outgoing]) -> list[bytes]:
    return [o.encoded for o in items]


def _verified_receipts(corridor: Corridor, answers: list[tuple[Outgoing, Pushed]]) -> int:
    """How many answers are receipts that verify, for the right envelope, saying Delivered."""
    az = corridor.az
    verified = 0
    with az.sessions() as session:
        keys = registry.DatabaseKeys(session)
        for outgoing, pushed in answers:
            if pushed.status != 200:
                continue
            try:
                checked = verify_receipt(
                    pushed.receipt,
                    pushed.token,
                    keys=keys,
                    expected_sender_node="ru-node",
                    expected_digest=hashlib.sha256(outgoing.encoded).hexdigest(),
                    recorded_at=az.clock(),
                )
            except GreenlaneError:
                continue
            verified += checked.receipt.tracking.value == "Delivered"
    return verified


# --- the bare pipeline ------------------------------------------------------------------------


class _Keys:
    """The registry's keys, read once: the bare pipeline has no database lookups but its insert."""

    def __init__(self, ctx: NodeContext) -> None:
        with ctx.sessions() as session:
            lookup = registry.DatabaseKeys(session)
            found = (lookup.key(k) for k in session.scalars(select(StoredKey.key_id)))
            self.keys: dict[str, RegisteredKey] = {k.key_id: k for k in found if k is not None}

    def key(self, key_id: str) -> RegisteredKey | None:
        return self.keys.get(key_id)


def bare(corridor: Corridor, items: list[Outgoing], database: Path) -> dict[str, Any]:
    """The same envelopes through the same libraries, no HTTP, no ORM: envelopes/s per round."""
    ctx = corridor.context("ru-node", database)
    keys = _Keys(ctx)
    ctx.engine.dispose()
    settings = ctx.settings
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")

    def one(data: bytes, token: str) -> None:
        now = datetime.now(UTC)
        verify_message(token, data, keys=keys, recorded_at=now)
        envelope, payload = decode(data)
        result = validation.validate_bytes(payload, "bench.xml", settings)
        assert result.document is not None
        assert not has_errors(result.findings)
        check = verify_parsed(result.document.root)
        role = Role.VETERINARY if envelope.document_type in inbound.VETERINARY_TYPES else Role.NPPO
        decision = judge_trust(
            check, keys, recorded_at=now, export_country=envelope.from_country, role=role
        )
        assert decision.trusted, decision.findings
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO documents (sha256, document_type, document_number, raw, size, valid, "
            "received_at) VALUES (?, ?, ?, ?, ?, 1, ?)",
            (
                envelope.payload_sha256,
                envelope.document_type,
                envelope.document_number,
                payload,
                len(payload),
                now.isoformat(),
            ),
        )
        connection.execute("COMMIT")

    rates = []
    for part in rounds(items):
        pairs = list(zip(_encoded(part), tokens(corridor, part), strict=True))
        started = time.perf_counter()
        for data, token in pairs:
            one(data, token)
            if time.perf_counter() - started > RUN_SECONDS:
                break
        rates.append(len(pairs) / (time.perf_counter() - started))
    connection.close()
    return {"rate": statistics.median(rates), "rates": [round(r, 1) for r in rates]}


# --- the receive path, stage by stage ---------------------------------------------------------


class Stages:
    """Exclusive wall time per stage: a stage's time excludes the timed stages it calls."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._stack: list[float] = []
        self._undo: list[Callable[[], None]] = []

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append(0.0)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.spent[stage] += elapsed - self._stack.pop()
                if self._stack:
                    self._stack[-1] += elapsed

        return timed

    def patch(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name)
        setattr(owner, name, self.wrap(stage, original))
        self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


# What each stage is: (where the name is looked up, the name, the stage).
_STAGES: list[tuple[Any, str, str]] = [
    (envelope_module, "verify_message", "JWS signature (envelope)"),
    (envelope_module, "decode", "envelope decode"),
    (validation, "parse_bytes", "parse"),
    (checks, "check_structure", "structure"),
    (checks, "check_rules", "rules"),
    (inbound, "verify_parsed", "XML-DSig signature"),
    (inbound, "judge_trust", "XML-DSig trust decision"),
    (registry.DatabaseKeys, "key", "key lookups (JWS and XML-DSig keys)"),
    (NodeContext, "signer", "key lookup (receipt signer)"),
    (inbound, "judge_payload", "facts and header checks"),
    (inbound, "record_message", "storage: seen message (replay check)"),
    (inbound, "_store", "storage: inbox row, receipt, flushes"),
    (inbound, "add_document", "storage: document"),
    (certificate_rows, "record", "storage: certificate"),
    (certificate_rows, "publish", "storage: feed event"),
    # SQLAlchemy's own begin and commit (internal names): the BEGIN IMMEDIATE and the COMMIT.
    (Connection, "_begin_impl", "transaction begin (BEGIN IMMEDIATE, write lock)"),
    (Connection, "_commit_impl", "transaction commit"),
    (evidence, "append", "evidence"),
    (inbound, "receipt_for", "receipt"),
    (inbound, "encode_receipt", "receipt"),
    (inbound, "sign_message", "receipt signature"),
]
TOTAL = "receive (in process)"
OTHER = "session and glue"
HTTP = "HTTP and serving (node CPU per envelope over HTTP, less receive in process)"


def stages(corridor: Corridor, items: list[Outgoing], database: Path) -> dict[str, Any]:
    """Receive every envelope in this process, each stage timed; µs per envelope."""
    ctx = corridor.context("ru-node", database)
    pairs = list(zip(_encoded(items), tokens(corridor, items), strict=True))
    inbound.receive(ctx, *pairs[0])  # first use loads the tables
    plain = [inbound.receive(ctx, *p) for p in pairs[1:WARMUP]]
    assert all(a.tracking.value == "Delivered" for a in plain)
    # Unwrapped first, for the rate; then wrapped, for the shares.
    measured = pairs[WARMUP:]
    half = len(measured) // 2
    started, cpu = time.perf_counter(), time.process_time()
    for pair in measured[:half]:
        inbound.receive(ctx, *pair)
    plain_seconds = time.perf_counter() - started
    plain_cpu = time.process_time() - cpu
    timer = Stages()
    for owner, name, stage in _STAGES:
        timer.patch(owner, name, stage)
    receive = timer.wrap(TOTAL, inbound.receive)
    try:
        for pair in measured[half:]:
            answer = receive(ctx, *pair)
            assert answer.tracking.value == "Delivered", answer
    finally:
        timer.restore()
        ctx.engine.dispose()
    count = len(measured) - half
    total = sum(timer.spent.values())
    spent = {k: v for k, v in timer.spent.items() if k != TOTAL}
    spent[OTHER] = timer.spent[TOTAL]
    return {
        "in_process_rate": half / plain_seconds,
        "in_process_cpu_us": plain_cpu / half * 1e6,
        "instrumented_us": total / count * 1e6,
        "stages_us": {k: v / count * 1e6 for k, v in sorted(spent.items(), key=lambda i: -i[1])},
    }


# --- latency: submit at AZ to Delivered at AZ -------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    at: float
    """Wall time (epoch seconds) when the submit request started."""
    answered: float
    message_id: str | None
    """None when the submit failed or was not answered within ``SUBMIT_TIMEOUT``."""


async def _offer(url: str, token: str, documents: list[bytes], rate: float) -> list[Submitted]:
    """Submit each document at its scheduled time, whatever came of the earlier ones (open loop)."""
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=url,
        trust_env=False,
        timeout=SUBMIT_TIMEOUT,
        limits=limits,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
    ) as client:

        async def submit(raw: bytes) -> Submitted:
            at = time.time()
            try:
                response = await client.post("/api/v1/certificates", content=raw)
            except httpx.HTTPError:
                return Submitted(at, time.time(), None)
            if response.status_code != 201:
                return Submitted(at, time.time(), None)
            return Submitted(at, time.time(), str(response.json()["messages"][-1]["message_id"]))

        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        tasks = []
        for i, raw in enumerate(documents):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(raw)))
        return await asyncio.gather(*tasks)


def _delivered(database: Path, ids: set[str]) -> dict[str, float]:
    """Message id -> when AZ recorded it delivered (epoch seconds), read without taking a lock.

    A plain read-only connection: a session would BEGIN IMMEDIATE and queue
    for the node's write lock with every poll.
    """
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT message_id, delivered_at FROM outbox WHERE delivered_at IS NOT NULL"
        ).fetchall()
    finally:
        connection.close()
    return {
        m: datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp() for m, at in rows if m in ids
    }


def _drain(database: Path, ids: set[str]) -> dict[str, float]:
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        delivered = _delivered(database, ids)
        if len(delivered) == len(ids) or time.monotonic() > deadline:
            return delivered
        time.sleep(0.2)


def _spent(before: float | None, after: float | None, count: int) -> float | None:
    """CPU milliseconds per item between two readings of a process's CPU time."""
    return None if before is None or after is None else (after - before) / count * 1000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(corridor: Corridor, logs: Path) -> list[dict[str, Any]]:
    """At each offered rate, per certificate: submit request start to AZ recording Delivered.

    Both nodes run as processes. A certificate not delivered within the bounds
    leaves p99 unreached (None) rather than shortening the tail.
    """
    token = corridor.made.tokens("az-node")["az-fsa"]
    database = corridor.database("az-node")
    out = []
    ru_log, az_log = logs / "ru-latency.log", logs / "az-latency.log"
    with serve(corridor, "ru-node", ru_log) as ru, serve(corridor, "az-node", az_log) as az:
        warm = asyncio.run(_offer(az.url, token, certificates(WARMUP, "BENCH-WARM"), 10))
        _drain(database, {s.message_id for s in warm if s.message_id})
        for rate in LATENCY_RATES:
            documents = certificates(int(rate * LATENCY_SECONDS), f"BENCH-L{rate:03d}")
            started, cpu = time.time(), (az.cpu(), ru.cpu())
            offered = asyncio.run(_offer(az.url, token, documents, rate))
            delivered = _drain(database, {s.message_id for s in offered if s.message_id})
            spent = [
                _spent(before, after.cpu(), len(documents))
                for before, after in zip(cpu, (az, ru), strict=True)
            ]
            done = [(s, delivered[s.message_id]) for s in offered if s.message_id in delivered]
            total = [(at - s.at) * 1000 for s, at in done]
            submit = [(s.answered - s.at) * 1000 for s, _ in done]
            complete = len(done) == len(documents)
            out.append(
                {
                    "rate": rate,
                    "offered": len(documents),
                    "accepted": sum(s.message_id is not None for s in offered),
                    "delivered": len(done),
                    "p50_ms": _percentile(total, 0.50) if total else None,
                    "p99_ms": _percentile(total, 0.99) if complete else None,
                    "max_ms": max(total) if complete else None,
                    "submit_p50_ms": _percentile(submit, 0.50) if submit else None,
                    "delivered_per_s": len(done) / (max(at for _, at in done) - started)
                    if done
                    else 0.0,
                    "az_cpu_ms_per_certificate": spent[0],
                    "ru_cpu_ms_per_certificate": spent[1],
                }
            )
    return out


# --- all of it --------------------------------------------------------------------------------


def run(count: int = COUNT) -> dict[str, Any]:
    """Every exchange measurement, side by side, in one scratch corridor per part."""
    with tempfile.TemporaryDirectory(prefix="greenlane-bench-") as scratch:
        root = Path(scratch)
        corridor = Corridor.create(root / "ingest")
        items = envelopes(corridor, certificates(count + WARMUP, "BENCH"))
        pristine = root / "pristine.db"
        shutil.copyfile(corridor.database("ru-node"), pristine)
        shutil.copyfile(pristine, root / "bare.db")
        shutil.copyfile(pristine, root / "stages.db")
        pushed = ingest(corridor, items, root / "ru-ingest.log")
        ru_database = corridor.database("ru-node")
        for leftover in (Path(f"{ru_database}-wal"), Path(f"{ru_database}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(pristine, ru_database)  # the batched run starts from the same state
        batch_items = envelopes(corridor, certificates(count + WARMUP, "BATCH"))
        batched = ingest(corridor, batch_items, root / "ru-batched.log", batched=True)
        baseline = bare(corridor, items[WARMUP:], root / "bare.db")
        profile = stages(corridor, items, root / "stages.db")
        corridor.az.engine.dispose()
        delays = latency(Corridor.create(root / "latency"), root)
    node_cpu = pushed["node_cpu_ms_per_envelope"]
    profile["stages_us"][HTTP] = (
        node_cpu * 1000 - profile["in_process_cpu_us"] if node_cpu else None
    )
    profile["stages_grouped_us"] = grouped(profile["stages_us"])
    return {
        "count": count,
        "connections": CONNECTIONS,
        "ingest": pushed,
        "ingest_batched": batched,
        "bare": baseline,
        "profile": profile,
        "latency": delays,
    }


def results(exchange: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines for the table in docs/performance.md."""
    pushed, baseline = exchange["ingest"], exchange["bare"]
    batched = exchange["ingest_batched"]
    lines: list[dict[str, Any]] = [
        {
            "name": f"envelopes ingested over HTTP by a running node (verified, validated, "
            f"stored, receipted), {exchange['count']:,} distinct, "
            f"{exchange['connections']} connections; receipts verified: "
            f"{pushed['receipts_verified']:,} of {pushed['sent']:,}",
            "unit": "envelopes/s",
            "value": round(pushed["rate"]),
            "baseline": "bare pipeline: JWS + XML-DSig verify, parse, structure, rules, "
            "SQLite insert, same envelopes, no HTTP",
            "baseline_value": round(baseline["rate"]),
            "ratio": round(pushed["rate"] / baseline["rate"], 3),
            "target_ratio": 0.5,
            "target": "0.5; 1,000/s goal; 250/s at least",
        },
        {
            "name": f"envelopes ingested over HTTP, {BATCH} per request to the batch endpoint "
            f"(as the delivery worker sends what is due together), {BATCH_CONNECTIONS} "
            f"connections; receipts verified: {batched['receipts_verified']:,} of "
            f"{batched['sent']:,}",
            "unit": "envelopes/s",
            "value": round(batched["rate"]),
            "baseline": "the same bare pipeline",
            "baseline_value": round(baseline["rate"]),
            "ratio": round(batched["rate"] / baseline["rate"], 3),
            "target_ratio": 0.5,
            "target": "0.5; 1,000/s goal; 250/s at least",
        },
        {
            "name": "envelopes received in process (receive(), no HTTP), same envelopes",
            "unit": "envelopes/s",
            "value": round(exchange["profile"]["in_process_rate"]),
        },
    ]
    for level in exchange["latency"]:
        for q in ("p50", "p99"):
            value = level[f"{q}_ms"]
            lines.append(
                {
                    "name": f"push latency, submit at AZ to Delivered at AZ, {q}, "
                    f"{level['rate']}/s offered for {LATENCY_SECONDS:.0f} s "
                    f"({level['delivered']:,} of {level['offered']:,} delivered, "
                    f"{level['delivered_per_s']:.0f}/s)",
                    "unit": "ms",
                    "value": round(value, 1) if value is not None else "not reached",
                    "target": "< 50 ms" if q == "p99" and level["rate"] == 200 else "",
                }
            )
    return lines


GROUPS = {
    "parse": ("parse",),
    "structure": ("structure",),
    "rules": ("rules",),
    "signature": (
        "JWS signature (envelope)",
        "XML-DSig signature",
        "XML-DSig trust decision",
        "key lookups (JWS and XML-DSig keys)",
    ),
    "storage": (
        "transaction begin (BEGIN IMMEDIATE, write lock)",
        "storage: seen message (replay check)",
        "storage: document",
        "storage: certificate",
        "storage: inbox row, receipt, flushes",
        "storage: feed event",
        "transaction commit",
    ),
    "evidence": ("evidence",),
    "receipt": ("receipt", "key lookup (receipt signer)", "receipt signature"),
    "envelope and glue": ("envelope decode", "facts and header checks", OTHER),
    "HTTP": (HTTP,),
}
"""The issue's stages, in its order, and the measured parts each is made of."""


def grouped(stages_us: dict[str, float | None]) -> dict[str, float]:
    """µs per envelope for each of the issue's stages."""
    return {
        group: sum(stages_us.get(part) or 0.0 for part in parts) for group, parts in GROUPS.items()
    }


def profile_table(exchange: dict[str, Any]) -> str:
    """Where one envelope's time goes at the receiving node: µs and share, stage by stage."""
    spent = exchange["profile"]["stages_us"]
    total = sum(v for v in spent.values() if v is not None)
    lines = ["| stage | part | µs per envelope | share |", "|---|---|---|---|"]
    for group, parts in GROUPS.items():
        subtotal = sum(spent.get(part) or 0.0 for part in parts)
        lines.append(f"| **{group}** | | **{subtotal:,.0f}** | **{subtotal / total:.0%}** |")
        if len(parts) > 1:
            lines += [f"| | {p} | {spent.get(p) or 0.0:,.0f} | |" for p in parts]
    lines.append(f"| total | | {total:,.0f} | 100% |")
    return "\n".join(lines)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else COUNT
    exchange = run(count)
    print(json.dumps(exchange, indent=2, default=str))
    print(profile_table(exchange))


if __name__ == "__main__":
    main()
