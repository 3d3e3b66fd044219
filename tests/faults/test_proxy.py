"""The fault proxy between a real httpx client and a real HTTP server, all on 127.0.0.1.

The server counts a request as processed before it answers, like a node that stores a
delivery and then acknowledges it, so each test can say whether the server saw it.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .proxy import FAULT_NAMES, FaultProxy, Faults, with_connection_close

REPO = Path(__file__).resolve().parents[2]
GET_BODY = b"0123456789abcdef" * 256  # 4 KiB, so a truncation has room to cut
NETWORK_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CountingHandler)
        self._lock = threading.Lock()
        self.processed = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def record(self) -> None:
        with self._lock:
            self.processed += 1


class _CountingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    server: _CountingServer

    def do_GET(self) -> None:
        self._answer(GET_BODY)

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _answer(self, body: bytes) -> None:
        self.server.record()  # processed first, acknowledged second
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def upstream() -> Iterator[_CountingServer]:
    server = _CountingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _client(*, keep_alive: bool = False) -> httpx.Client:
    """Short timeouts, no proxy from the environment, and by default one connection per request."""
    limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(timeout=3.0, trust_env=False, limits=limits)


def _url(proxy: FaultProxy) -> str:
    return f"http://127.0.0.1:{proxy.port}/"


def _wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_faults_forwards_bytes_exactly(upstream: _CountingServer) -> None:
    """Without faults every request reaches the server and the echo comes back byte for byte."""
    payload = os.urandom(300_000)
    with FaultProxy(upstream.port) as proxy, _client() as client:
        for _ in range(3):
            response = client.post(_url(proxy), content=payload)
            assert response.status_code == 200
            assert response.content == payload
        assert proxy.stats.connections == 3
        assert proxy.stats.passed == 3
    assert upstream.processed == 3


def test_decision_is_per_connection(upstream: _CountingServer) -> None:
    """A keep-alive connection gets one decision, so its later requests pass untouched."""
    with FaultProxy(upstream.port) as proxy, _client(keep_alive=True) as client:
        for _ in range(5):
            assert client.get(_url(proxy)).status_code == 200
        proxy.set_faults(Faults(http_502=1.0))
        assert client.get(_url(proxy)).status_code == 200  # still the passed connection
        assert proxy.stats.connections == 1
    assert upstream.processed == 6


def test_one_request_per_connection_decides_per_request(upstream: _CountingServer) -> None:
    """In one-request mode a keep-alive client gets a new connection, and decision, per request."""
    with (
        FaultProxy(upstream.port, one_request_per_connection=True) as proxy,
        _client(keep_alive=True) as client,
    ):
        for _ in range(3):
            response = client.post(_url(proxy), content=b"envelope")
            assert response.status_code == 200
            assert response.content == b"envelope"
            assert response.headers["connection"] == "close"
        proxy.set_faults(Faults(http_502=1.0))
        assert client.get(_url(proxy)).status_code == 502  # the next request is decided anew
        assert proxy.stats.connections == 4
        assert proxy.history == ["pass", "pass", "pass", "http_502"]
    assert upstream.processed == 3


def test_one_request_per_connection_delays_request_and_response(
    upstream: _CountingServer,
) -> None:
    """In one-request mode a delayed request still succeeds, held once each way."""
    faults = Faults(delay=1.0, min_delay=0.2, max_delay=0.25)
    with (
        FaultProxy(upstream.port, faults, one_request_per_connection=True) as proxy,
        _client(keep_alive=True) as client,
    ):
        started = time.monotonic()
        response = client.get(_url(proxy))
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.content == GET_BODY
        assert 0.4 <= elapsed < 2.0
        assert proxy.stats.delay == 1
    assert upstream.processed == 1


def test_connection_close_goes_into_the_final_head() -> None:
    """Connection: close is added to the final response, not to an interim 100 Continue."""
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert with_connection_close(interim + final) == (
        interim + b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    )


def test_http_502_never_contacts_the_server(upstream: _CountingServer) -> None:
    """http_502 answers 502 with Connection: close and the server sees nothing."""
    with FaultProxy(upstream.port, Faults(http_502=1.0)) as proxy, _client() as client:
        response = client.post(_url(proxy), content=b"envelope")
        assert response.status_code == 502
        assert response.headers["connection"] == "close"
        assert proxy.stats.http_502 == 1
    assert upstream.processed == 0


def test_drop_response_loses_the_acknowledgement(upstream: _CountingServer) -> None:
    """drop_response fails the client although the server processed the request."""
    with FaultProxy(upstream.port, Faults(drop_response=1.0)) as proxy, _client() as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post(_url(proxy), content=b"envelope")
        assert proxy.stats.drop_response == 1
    assert upstream.processed == 1


def test_drop_request_never_reaches_the_server(upstream: _CountingServer) -> None:
    """drop_request fails the client and the server sees nothing."""
    with FaultProxy(upstream.port, Faults(drop_request=1.0)) as proxy, _client() as client:
        with pytest.raises(NETWORK_ERRORS):
            client.post(_url(proxy), content=b"envelope")
        assert proxy.stats.drop_request == 1
    assert upstream.processed == 0


def test_refuse_closes_before_forwarding(upstream: _CountingServer) -> None:
    """refuse fails the client at once and the server sees nothing."""
    with FaultProxy(upstream.port, Faults(refuse=1.0)) as proxy, _client() as client:
        with pytest.raises(NETWORK_ERRORS):
            client.get(_url(proxy))
        assert proxy.stats.refuse == 1
    assert upstream.processed == 0


def test_truncate_response_fails_the_client(upstream: _CountingServer) -> None:
    """truncate_response cuts every response short, so the client errors though the server acted."""
    with FaultProxy(upstream.port, Faults(truncate_response=1.0), seed=3) as proxy:
        with _client() as client:
            for _ in range(5):
                with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                    client.get(_url(proxy))
        assert proxy.stats.truncate_response == 5
    assert upstream.processed == 5


def test_delay_slows_requests_but_they_succeed(upstream: _CountingServer) -> None:
    """delay holds the request and the response each once, and the request still succeeds."""
    faults = Faults(delay=1.0, min_delay=0.2, max_delay=0.25)
    with FaultProxy(upstream.port, faults) as proxy, _client() as client:
        started = time.monotonic()
        response = client.get(_url(proxy))
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.content == GET_BODY
        assert 0.4 <= elapsed < 2.0
        assert proxy.stats.delay == 1
    assert upstream.processed == 1


def test_set_faults_applies_to_new_connections(upstream: _CountingServer) -> None:
    """set_faults changes the network live: a healed proxy forwards again."""
    with FaultProxy(upstream.port, Faults(http_502=1.0)) as proxy, _client() as client:
        assert client.get(_url(proxy)).status_code == 502
        proxy.set_faults(Faults())
        assert client.get(_url(proxy)).status_code == 200
        assert proxy.history == ["http_502", "pass"]
    assert upstream.processed == 1


def _outcomes(upstream_port: int, seed: int) -> tuple[list[str], list[str]]:
    faults = Faults(refuse=0.15, drop_request=0.15, drop_response=0.15, http_502=0.15)
    outcomes: list[str] = []
    with FaultProxy(upstream_port, faults, seed=seed) as proxy, _client() as client:
        for _ in range(20):
            try:
                outcomes.append(str(client.get(_url(proxy)).status_code))
            except NETWORK_ERRORS:
                outcomes.append("error")
        return proxy.history, outcomes


def test_same_seed_same_fault_sequence(upstream: _CountingServer) -> None:
    """One seed gives one sequence of faults and outcomes; another seed gives another."""
    history, outcomes = _outcomes(upstream.port, seed=42)
    assert (history, outcomes) == _outcomes(upstream.port, seed=42)
    assert history != _outcomes(upstream.port, seed=43)[0]
    assert len(set(history)) > 2  # the mix really was mixed
    assert outcomes.count("200") == history.count("pass")
    assert outcomes.count("502") == history.count("http_502")


def test_unreachable_target_closes_the_client(upstream: _CountingServer) -> None:
    """With the target down the client's connection is closed, not left hanging."""
    with FaultProxy(_free_port()) as proxy, _client() as client:
        with pytest.raises(NETWORK_ERRORS):
            client.get(_url(proxy))
        _wait_until(lambda: proxy.stats.upstream_errors == 1)


def test_oversize_request_is_refused(upstream: _CountingServer) -> None:
    """A request over max_message_bytes is not buffered: the connection is closed."""
    with FaultProxy(upstream.port, Faults(http_502=1.0), max_message_bytes=1024) as proxy:
        with _client() as client, pytest.raises(NETWORK_ERRORS):
            client.post(_url(proxy), content=b"x" * 10_000)
        _wait_until(lambda: proxy.stats.oversize == 1)
    assert upstream.processed == 0


@pytest.mark.parametrize("faults", [Faults(), Faults(http_502=1.0)], ids=["forwarded", "framed"])
def test_silent_client_is_timed_out(upstream: _CountingServer, faults: Faults) -> None:
    """A client that stops mid-request is cut off after read_timeout, forwarded or framed."""
    with FaultProxy(upstream.port, faults, read_timeout=0.3) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=3.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: node\r\n")
            started = time.monotonic()
            assert sock.recv(1024) == b""
            assert time.monotonic() - started < 2.0
        _wait_until(lambda: proxy.stats.timeouts == 1)


def test_close_aborts_open_connections(
    upstream: _CountingServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutdown closes every open connection promptly and quietly instead of waiting for peers."""
    proxy = FaultProxy(upstream.port).start()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3.0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: node\r\n")  # the server waits for the rest
        _wait_until(lambda: proxy.stats.active == 1)
        started = time.monotonic()
        proxy.close()
        assert time.monotonic() - started < 2.0
        with suppress(ConnectionResetError):  # an aborted connection may be reset
            assert sock.recv(1024) == b""
    with pytest.raises(OSError, match="refused"):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1.0).close()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict.fromkeys(FAULT_NAMES, 0.5), "sum to"),
        ({"refuse": -0.1}, "probability"),
        ({"min_delay": 2.0, "max_delay": 1.0}, "min_delay"),
    ],
    ids=["sum", "negative", "delays"],
)
def test_invalid_faults_are_refused(options: dict[str, float], message: str) -> None:
    """Probabilities outside [0, 1], summing over 1, or inverted delays are refused."""
    with pytest.raises(ValueError, match=message):
        Faults(**options)


@contextmanager
def _proxy_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The proxy as its own process; killed at the end whatever happens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.proxy", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        assert ready, "the proxy process printed no port"
        yield process, int(process.stdout.readline())
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=5)


def test_process_forwards_and_stops_on_sigterm(upstream: _CountingServer) -> None:
    """The process form prints its port, forwards, and exits 0 with its stats on SIGTERM."""
    with _proxy_process("--target-port", str(upstream.port), "--seed", "1") as (process, port):
        with _client() as client:
            response = client.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=5)
        assert process.returncode == 0
        stats = json.loads(stderr.strip().splitlines()[-1])
        assert stats["connections"] == 1
        assert stats["passed"] == 1
    assert upstream.processed == 1


def test_process_heals_and_rearms_on_signals(upstream: _CountingServer) -> None:
    """SIGUSR1 heals the network of the process form and SIGUSR2 restores its faults."""
    args = ("--target-port", str(upstream.port), "--http-502", "1")
    with _proxy_process(*args) as (process, port), _client() as client:
        url = f"http://127.0.0.1:{port}/"
        assert client.get(url).status_code == 502
        process.send_signal(signal.SIGUSR1)
        _wait_until(lambda: client.get(url).status_code == 200)
        process.send_signal(signal.SIGUSR2)
        _wait_until(lambda: client.get(url).status_code == 502)
