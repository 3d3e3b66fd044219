"""A fault-injecting TCP proxy that stands in for a hostile network between two nodes.

It listens on 127.0.0.1 and forwards to a target port on 127.0.0.1. For each TCP
connection it either forwards bytes untouched or injects one fault, chosen with a
seeded ``random.Random`` so that a failing run replays with the same seed:

    refuse             accept, then close before anything is forwarded
    drop_request       read one request, never forward it, close: the server never saw it
    drop_response      forward one request, read the whole response, discard it, close:
                       the server processed it but the client never learns (lost ack)
    truncate_response  forward one request, pass on only the first N bytes of the
                       response (N random, less than its length), close
    delay              forward everything, but hold traffic for a random time in
                       [min_delay, max_delay] each time it changes direction, so each
                       request and each response on the connection waits once
    http_502           read one request, answer ``502 Bad Gateway`` with
                       ``Connection: close``; the server is never contacted

The decision (and the delay or cut it uses) is drawn once per TCP connection, in
accept order, and recorded in ``history``: one seed replays exactly when connections
arrive in the same order, i.e. from one sequential client. HTTP/1.1 clients keep
connections alive, so a passed (or delayed) connection carries all its later requests
untouched, and a faulty one is closed after its first request. Tests that want one
decision per request use a client without keep-alive
(``httpx.Limits(max_keepalive_connections=0)``), or, when the client is not theirs to
configure (a node's delivery worker), run the proxy with ``one_request_per_connection``:
then a passed or delayed connection also carries exactly one request, whose response
goes back with ``Connection: close`` added, so the client opens a new connection (and
gets a new decision) for its next request. The faults that read a request or a
response frame one HTTP/1.1 message (Content-Length, chunked, or until close); a
response delimited only by the server closing cannot be seen to be truncated.

Everything is bounded so the proxy never hangs a test: each framed message must arrive
within ``read_timeout`` seconds and fit in ``max_message_bytes``; a forwarded connection
idle in both directions for ``read_timeout`` is closed; shutdown aborts every connection.
If the target is down, the client's connection is accepted and then closed.

Two forms:

    with FaultProxy(target_port, faults=Faults(drop_response=0.2), seed=7) as proxy:
        ...  # talk to http://127.0.0.1:{proxy.port}
        proxy.set_faults(Faults())  # heal the network
        assert proxy.stats.drop_response > 0

    python -m tests.faults.proxy --target-port 8001 --seed 7 --drop-response 0.2
    python -m tests.faults.proxy --target-port 8001 --one-request-per-connection --delay 0.5

The process prints the bound port as the first line of stdout (``--listen-port 0``
picks a free one). SIGTERM or SIGINT stops it and prints the stats as one JSON line on
stderr; SIGUSR1 heals the network (no faults) and SIGUSR2 restores the command-line
faults, so a test can kill -9 nodes while the proxy stays up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import signal
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Final, NamedTuple

LOOPBACK: Final = "127.0.0.1"
FAULT_NAMES: Final = (
    "refuse",
    "drop_request",
    "drop_response",
    "truncate_response",
    "delay",
    "http_502",
)
PASS: Final = "pass"

DEFAULT_READ_TIMEOUT: Final = 10.0
DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
HEAD_LIMIT: Final = 64 * 1024  # request/status line plus headers, and each chunk-size line
CHUNK: Final = 64 * 1024
HISTORY_LIMIT: Final = 100_000
SHUTDOWN_TIMEOUT: Final = 5.0

_BAD_GATEWAY_BODY: Final = b"502 Bad Gateway: injected by the fault proxy\n"
BAD_GATEWAY: Final = (
    b"HTTP/1.1 502 Bad Gateway\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: " + str(len(_BAD_GATEWAY_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n" + _BAD_GATEWAY_BODY
)


@dataclasses.dataclass(frozen=True)
class Faults:
    """Probability of each fault per connection; at most one applies, so they sum to <= 1."""

    refuse: float = 0.0
    drop_request: float = 0.0
    drop_response: float = 0.0
    truncate_response: float = 0.0
    delay: float = 0.0
    http_502: float = 0.0
    min_delay: float = 0.0
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        for name in FAULT_NAMES:
            probability = getattr(self, name)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {probability}")
        total = sum(getattr(self, name) for name in FAULT_NAMES)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities sum to {total}, more than 1")
        if not 0.0 <= self.min_delay <= self.max_delay:
            raise ValueError(
                f"need 0 <= min_delay <= max_delay, got {self.min_delay} and {self.max_delay}"
            )


@dataclasses.dataclass
class ProxyStats:
    """Counters since start; ``stats`` hands out copies, so they can be compared freely."""

    connections: int = 0  # accepted
    active: int = 0  # open right now
    passed: int = 0  # forwarded without a fault
    refuse: int = 0
    drop_request: int = 0
    drop_response: int = 0
    truncate_response: int = 0
    delay: int = 0
    http_502: int = 0
    upstream_errors: int = 0  # the target refused or did not answer the connect
    timeouts: int = 0  # read_timeout hit: slow message or idle connection
    oversize: int = 0  # a message over max_message_bytes, or headers over 64 KiB
    protocol_errors: int = 0  # unparseable HTTP where a message had to be framed
    disconnects: int = 0  # a peer closed or reset in the middle of a message


class _Plan(NamedTuple):
    fault: str  # one of FAULT_NAMES, or PASS
    delay: float  # seconds, used by "delay"
    cut: float  # fraction in [0, 1) of the response that "truncate_response" passes on


class _Oversize(Exception):
    """A message is larger than the proxy agrees to buffer."""


class _Malformed(Exception):
    """Bytes that do not frame as an HTTP/1.1 message."""


class _Unreachable(Exception):
    """The target did not accept a connection."""


class _Message(NamedTuple):
    raw: bytes
    start_line: str


class _Core:
    """The asyncio half: listens, decides a fault per connection, forwards; one event loop."""

    def __init__(
        self,
        target_port: int,
        faults: Faults,
        seed: int,
        listen_port: int,
        read_timeout: float,
        max_message_bytes: int,
        one_request_per_connection: bool = False,
    ) -> None:
        if read_timeout <= 0:
            raise ValueError("read_timeout must be positive")
        if max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        self._target_port = target_port
        self._listen_port = listen_port
        self._read_timeout = read_timeout
        self._max_message_bytes = max_message_bytes
        self._one_request = one_request_per_connection
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # stats, history and faults are read from other threads
        self._faults = self._checked(faults)
        self._stats = ProxyStats()
        self._history: deque[str] = deque(maxlen=HISTORY_LIMIT)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def _checked(self, faults: Faults) -> Faults:
        if faults.delay > 0 and faults.max_delay >= self._read_timeout:
            raise ValueError("max_delay must be shorter than read_timeout")
        return faults

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        checked = self._checked(faults)
        with self._lock:
            self._faults = checked

    def snapshot(self) -> ProxyStats:
        with self._lock:
            return dataclasses.replace(self._stats)

    def history(self) -> list[str]:
        with self._lock:
            return list(self._history)

    def _count(self, field: str, delta: int = 1) -> None:
        with self._lock:
            setattr(self._stats, field, getattr(self._stats, field) + delta)

    def _decide(self) -> _Plan:
        # Always three draws per connection, whatever the faults, so that one seed gives
        # one sequence even when set_faults changes the probabilities mid-run.
        with self._lock:
            roll, delay_roll, cut = self._rng.random(), self._rng.random(), self._rng.random()
            faults = self._faults
            fault = PASS
            threshold = 0.0
            for name in FAULT_NAMES:
                threshold += getattr(faults, name)
                if roll < threshold:
                    fault = name
                    break
            self._history.append(fault)
            self._stats.connections += 1
            self._stats.active += 1
            counter = "passed" if fault == PASS else fault
            setattr(self._stats, counter, getattr(self._stats, counter) + 1)
        delay = faults.min_delay + delay_roll * (faults.max_delay - faults.min_delay)
        return _Plan(fault, delay, cut)

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._accept, LOOPBACK, self._listen_port, limit=HEAD_LIMIT
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening and abort every open connection, waiting a bounded time."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), SHUTDOWN_TIMEOUT)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(self._decide(), reader, writer)
        except TimeoutError:
            self._count("timeouts")
        except (_Oversize, asyncio.LimitOverrunError):
            self._count("oversize")
        except _Malformed:
            self._count("protocol_errors")
        except _Unreachable:
            self._count("upstream_errors")
        except (asyncio.IncompleteReadError, OSError):
            self._count("disconnects")
        except asyncio.CancelledError:
            # Only stop() cancels, and it is waiting for this; ending cancelled would make
            # Python 3.11's start_server log a spurious error for every open connection.
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)
            self._count("active", -1)

    async def _serve(
        self, plan: _Plan, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if plan.fault == "refuse":
            return
        if plan.fault in ("drop_request", "http_502"):
            await self._read_message(reader)
            if plan.fault == "http_502":
                writer.write(BAD_GATEWAY)
                await self._drain(writer)
            return
        if plan.fault in ("drop_response", "truncate_response"):
            request = await self._read_message(reader)
            method = request.start_line.split(" ", 1)[0]
            async with self._upstream() as (upstream_reader, upstream_writer):
                upstream_writer.write(request.raw)
                await self._drain(upstream_writer)
                response = await self._read_message(upstream_reader, response_to=method)
            if plan.fault == "truncate_response":
                writer.write(response.raw[: int(plan.cut * len(response.raw))])
                await self._drain(writer)
            return
        delay = plan.delay if plan.fault == "delay" else 0.0
        if self._one_request:
            await self._forward_one(reader, writer, delay)
            return
        async with self._upstream() as (upstream_reader, upstream_writer):
            await self._pipe(reader, writer, upstream_reader, upstream_writer, delay)

    async def _forward_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
    ) -> None:
        """Forward one request and its response (each held ``delay`` s), then close."""
        request = await self._read_message(reader)
        method = request.start_line.split(" ", 1)[0]
        if delay:
            await asyncio.sleep(delay)
        async with self._upstream() as (upstream_reader, upstream_writer):
            upstream_writer.write(request.raw)
            await self._drain(upstream_writer)
            response = await self._read_message(upstream_reader, response_to=method)
        if delay:
            await asyncio.sleep(delay)
        writer.write(with_connection_close(response.raw))
        await self._drain(writer)

    @contextlib.asynccontextmanager
    async def _upstream(
        self,
    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, self._target_port, limit=HEAD_LIMIT),
                self._read_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise _Unreachable(str(exc)) from exc
        self._writers.add(writer)
        try:
            yield reader, writer
        finally:
            writer.close()
            self._writers.discard(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(writer.drain(), self._read_timeout)

    async def _read_message(
        self, reader: asyncio.StreamReader, response_to: str | None = None
    ) -> _Message:
        async with asyncio.timeout(self._read_timeout):
            return await read_http_message(reader, self._max_message_bytes, response_to)

    async def _pipe(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
        delay: float,
    ) -> None:
        """Copy bytes both ways until both sides are done, half-closes included."""
        loop = asyncio.get_running_loop()
        last_activity = loop.time()
        last_direction = ""

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, direction: str
        ) -> None:
            nonlocal last_activity, last_direction
            while True:
                # Idle means no bytes either way: a slow server answering a fast request
                # leaves this direction quiet while the other one is still in use.
                remaining = self._read_timeout - (loop.time() - last_activity)
                if remaining <= 0:
                    raise TimeoutError
                try:
                    data = await asyncio.wait_for(source.read(CHUNK), remaining)
                except TimeoutError:
                    continue
                if not data:
                    if sink.can_write_eof():
                        with contextlib.suppress(OSError):
                            sink.write_eof()
                    return
                if delay and last_direction != direction:
                    last_direction = direction
                    last_activity = loop.time()
                    await asyncio.sleep(delay)
                last_direction = direction
                sink.write(data)
                await self._drain(sink)
                last_activity = loop.time()

        pumps = {
            asyncio.create_task(pump(client_reader, upstream_writer, "request")),
            asyncio.create_task(pump(upstream_reader, client_writer, "response")),
        }
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.wait(pumps, timeout=SHUTDOWN_TIMEOUT)


async def read_http_message(
    reader: asyncio.StreamReader, limit: int, response_to: str | None = None
) -> _Message:
    """Read exactly one HTTP/1.1 message; ``response_to`` is the request method for a response.

    Frames by Content-Length or chunked encoding; a response with neither is read until
    the server closes. Interim 1xx responses are kept together with the final one.
    """
    parts: list[bytes] = []
    size = 0

    def keep(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > limit:
            raise _Oversize(f"message over {limit} bytes")
        parts.append(chunk)

    def room(wanted: int) -> int:
        if size + wanted > limit:
            raise _Oversize(f"message over {limit} bytes")
        return wanted

    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        keep(head)
        start_line, headers = _parse_head(head)
        status = _status(start_line) if response_to is not None else 0
        if not (100 <= status < 200 and status != 101):
            break
    transfer_encoding = headers.get("transfer-encoding", "").lower()
    if status in (101, 204, 304) or response_to == "HEAD":
        pass
    elif transfer_encoding.rsplit(",", 1)[-1].strip() == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            keep(line)
            try:
                chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _Malformed(f"bad chunk size line {line[:40]!r}") from exc
            if chunk_size == 0:
                break
            keep(await reader.readexactly(room(chunk_size + 2)))
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
            keep(line)
        keep(line)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise _Malformed("bad Content-Length") from exc
        if length < 0:
            raise _Malformed("negative Content-Length")
        keep(await reader.readexactly(room(length)))
    elif response_to is not None:
        while chunk := await reader.read(CHUNK):
            keep(chunk)
    return _Message(b"".join(parts), start_line)


def with_connection_close(response: bytes) -> bytes:
    """The response with ``Connection: close`` added to its final head (after any 1xx)."""
    start = 0
    while True:
        line_end = response.index(b"\r\n", start)
        status = _status(response[start:line_end].decode("latin-1"))
        if 100 <= status < 200 and status != 101:
            start = response.index(b"\r\n\r\n", start) + 4
            continue
        cut = line_end + 2
        return response[:cut] + b"Connection: close\r\n" + response[cut:]


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise _Malformed(f"bad header line {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    if not lines[0].strip():
        raise _Malformed("empty start line")
    return lines[0], headers


def _status(start_line: str) -> int:
    parts = start_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _Malformed(f"bad status line {start_line[:40]!r}")
    return int(parts[1])


class FaultProxy:
    """The proxy on its own event loop in a background thread of the test process."""

    def __init__(
        self,
        target_port: int,
        faults: Faults | None = None,
        seed: int = 0,
        *,
        listen_port: int = 0,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        one_request_per_connection: bool = False,
    ) -> None:
        self._core = _Core(
            target_port,
            faults or Faults(),
            seed,
            listen_port,
            read_timeout,
            max_message_bytes,
            one_request_per_connection,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port bound on 127.0.0.1; only meaningful once started."""
        if not self._core.port:
            raise RuntimeError("the proxy is not running")
        return self._core.port

    @property
    def stats(self) -> ProxyStats:
        return self._core.snapshot()

    @property
    def history(self) -> list[str]:
        """The fault chosen for each connection so far, in accept order (``"pass"`` if none)."""
        return self._core.history()

    @property
    def faults(self) -> Faults:
        return self._core.faults

    def set_faults(self, faults: Faults) -> None:
        """Change the faults for connections accepted from now on; open ones keep theirs."""
        self._core.set_faults(faults)

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("the proxy was already started")
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(SHUTDOWN_TIMEOUT):
            raise RuntimeError("the proxy did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def close(self) -> None:
        """Stop listening and abort every connection; returns within a bounded time."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None or not thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop may have closed in between
            loop.call_soon_threadsafe(stopping.set)
        thread.join(2 * SHUTDOWN_TIMEOUT)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        try:
            await self._core.start()
        except BaseException as exc:  # handed to the thread that called start()
            self._error = exc
            return
        finally:
            self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self._core.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.proxy",
        allow_abbrev=False,
        description="Fault-injecting TCP proxy on 127.0.0.1 (see the module docstring).",
    )
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--listen-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0)
    for name in FAULT_NAMES:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=0.0,
            metavar="P",
            help=f"probability of {name} per connection",
        )
    parser.add_argument("--min-delay", type=float, default=0.0)
    parser.add_argument("--max-delay", type=float, default=1.0)
    parser.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT)
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    parser.add_argument(
        "--one-request-per-connection",
        action="store_true",
        help="close every connection after one response, so each request gets a decision",
    )
    return parser


async def _serve_until_signalled(core: _Core, armed: Faults) -> int:
    try:
        port = await core.start()
    except OSError as exc:
        print(f"fault proxy: cannot listen: {exc}", file=sys.stderr, flush=True)
        return 2
    print(port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    healed = dataclasses.replace(armed, **dict.fromkeys(FAULT_NAMES, 0.0))
    loop.add_signal_handler(signal.SIGUSR1, core.set_faults, healed)
    loop.add_signal_handler(signal.SIGUSR2, core.set_faults, armed)
    await stop.wait()
    await core.stop()
    print(json.dumps(dataclasses.asdict(core.snapshot())), file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults(
            **{name: getattr(args, name) for name in FAULT_NAMES},
            min_delay=args.min_delay,
            max_delay=args.max_delay,
        )
        core = _Core(
            args.target_port,
            faults,
            args.seed,
            args.listen_port,
            args.read_timeout,
            args.max_message_bytes,
            args.one_request_per_connection,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return asyncio.run(_serve_until_signalled(core, faults))


if __name__ == "__main__":
    raise SystemExit(main())
