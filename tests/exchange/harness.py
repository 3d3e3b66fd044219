"""Two real nodes on loopback for tests: a scaffolded corridor and uvicorn servers in threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from greenlane.api.app import create_app
from greenlane.cli import demo_certificates
from greenlane.corridor.agreement import load_corridor
from greenlane.corridor.scaffold import Mode, Scaffold, write_example
from greenlane.exchange.context import NodeContext, build_context
from greenlane.sps.jsonform import from_json
from greenlane.sps.writer import write_canonical


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def certificate_xml(number: str, lot: int = 0, type_code: str | None = None) -> bytes:
    """A realistic AZ -> RU certificate (the demo's lots), with its own number."""
    base = demo_certificates.LOTS[lot % len(demo_certificates.LOTS)]
    chosen = replace(base, number=number, type_code=type_code or base.type_code)
    return write_canonical(from_json(demo_certificates.certificate(chosen)))


def scaffold(
    directory: Path,
    delivery: tuple[Mode, Mode] = ("push", "push"),
    ports: tuple[int, int] | None = None,
) -> Scaffold:
    return write_example(directory, ports=ports or (free_port(), free_port()), delivery=delivery)


def context(made: Scaffold, node: str, **overrides: Any) -> NodeContext:
    settings = made.settings(node, **overrides)
    return build_context(settings, load_corridor(made.corridor_file), node)


@dataclass
class RunningNode:
    ctx: NodeContext
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=10,
        )


def tls_server_kwargs(ctx: NodeContext, *, require_client_cert: bool = True) -> dict[str, Any]:
    """uvicorn.Config arguments for mutual TLS with the node's key, as `greenlane serve` does."""
    from greenlane.api.tls import uvicorn_config_kwargs
    from greenlane.exchange.tls_files import corridor_roots, node_tls_files

    cert, key, password = node_tls_files(ctx)
    return dict(
        uvicorn_config_kwargs(
            cert, key, password, corridor_roots(ctx), require_client_cert=require_client_cert
        )
    )


@contextmanager
def serve(
    ctx: NodeContext,
    *,
    background: bool = True,
    tls: bool | None = None,
    require_client_cert: bool = True,
) -> Iterator[RunningNode]:
    """Serve a node on its corridor endpoint's port until the block ends.

    ``tls``: serve mutual TLS (the endpoint must then be https); by default when
    the node's settings have tls_enabled, as `greenlane serve` does.
    """
    url = ctx.entry.endpoint
    port = httpx.URL(url).port
    assert port is not None
    use_tls = ctx.settings.tls_enabled if tls is None else tls
    config = uvicorn.Config(
        create_app(ctx, background=background),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **(tls_server_kwargs(ctx, require_client_cert=require_client_cert) if use_tls else {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"node {ctx.node_id} did not start")
        time.sleep(0.02)
    try:
        yield RunningNode(ctx, server, thread, url)
    finally:
        server.should_exit = True
        thread.join(15)


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
