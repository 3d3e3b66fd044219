"""The demo's two nodes as real ``greenlane serve`` processes on loopback, and their clean end.

Each node runs as the operator would run it, from its folder's settings.toml
with its own SQLite file, its output in ``serve.log`` beside it. Whatever
happens to the demo (an error, Ctrl-C, SIGTERM) the processes are stopped:
SIGTERM, then SIGKILL after a grace period; on Linux a node also gets SIGTERM
if the demo itself is killed outright.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from greenlane.corridor.scaffold import Scaffold
from greenlane.errors import GreenlaneError

START_TIMEOUT = 30.0
"""Seconds a node has to answer /health after it is started."""
STOP_GRACE = 10.0
"""Seconds a node has to shut down on SIGTERM before it is killed."""


@dataclass
class NodeProcess:
    node: str
    url: str
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.folder / "serve.log"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def port_busy(port: int) -> bool:
    """True when something already listens on 127.0.0.1:``port``.

    SO_REUSEADDR as uvicorn sets it, so a port that only has connections in
    TIME_WAIT from an earlier run counts as free.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(ports: tuple[int, int]) -> None:
    """Refuse, with ``demo.port-busy``, ports already taken (an earlier demo still running?)."""
    if ports[0] == ports[1]:
        raise GreenlaneError(
            f"the two nodes need two ports, not {ports[0]} twice", code="config.invalid"
        )
    busy = [port for port in ports if port_busy(port)]
    if busy:
        raise GreenlaneError(
            f"port {', '.join(map(str, busy))} on 127.0.0.1 is already in use (another demo or "
            "node still running?): stop it, or pick two free ports with --ports AZ,RU",
            code="demo.port-busy",
        )


def node_environment(**settings: str) -> dict[str, str]:
    """This process's environment for a node process, without its GREENLANE_* variables
    (they would override the node's own settings file), plus ``settings``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GREENLANE_")}
    return {**environment, "PYTHONUNBUFFERED": "1", **settings}


def serve_command(corridor_file: Path, node: str, *, port: int, workers: int = 1) -> list[str]:
    """The command line that runs ``node`` of a corridor as a process on ``port``."""
    return [
        sys.executable,
        "-m",
        "greenlane",
        "serve",
        "--config",
        str(corridor_file),
        "--node",
        node,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: have the kernel send SIGTERM to the node if the demo dies without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start(made: Scaffold, node: str, port: int) -> NodeProcess:
    """Start ``greenlane serve`` for ``node``; it is not ready until :func:`wait_ready`."""
    folder = made.nodes[node]
    with (folder / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            serve_command(made.corridor_file, node, port=port),
            cwd=folder,
            env=node_environment(
                GREENLANE_SETTINGS_FILE=str(folder / "settings.toml"),
                # A demo day lasts seconds: each log countersigned by the other every second.
                GREENLANE_CHECKPOINT_SECONDS="1",
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the nodes in order
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    return NodeProcess(node, f"http://127.0.0.1:{port}", folder, process)


def wait_ready(nodes: list[NodeProcess], timeout: float = START_TIMEOUT) -> None:
    """Wait until every node answers /health as itself; ``demo.node-failed`` if one does not."""
    deadline = time.monotonic() + timeout
    waiting = list(nodes)
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        for _ in range(int(timeout / 0.1) + 1):
            for node in list(waiting):
                if not node.alive():
                    raise _failed(node, f"exited with status {node.process.returncode}")
                try:
                    answer = client.get(f"{node.url}/health")
                except httpx.TransportError:
                    continue
                if answer.status_code == 200 and answer.json().get("node") == node.node:
                    waiting.remove(node)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    if waiting:
        raise _failed(waiting[0], f"did not answer /health within {timeout:g} s")


def _failed(node: NodeProcess, what: str) -> GreenlaneError:
    tail = node.log_tail()
    return GreenlaneError(
        f"node {node.node} {what}; its log ({node.log}) ends:\n{tail}",
        code="demo.node-failed",
    )


def stop(nodes: list[NodeProcess], grace: float = STOP_GRACE) -> None:
    """SIGTERM to each (uvicorn shuts down cleanly), then SIGKILL to any still there after
    ``grace``; returns only when every process is gone."""
    for node in nodes:
        if node.alive():
            node.process.terminate()
    deadline = time.monotonic() + grace
    for node in nodes:
        try:
            node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(timeout=grace)


@contextmanager
def running(made: Scaffold, ports: dict[str, int]) -> Iterator[dict[str, NodeProcess]]:
    """Both nodes started and ready for the block; stopped however the block ends."""
    nodes: dict[str, NodeProcess] = {}
    try:
        for node, port in ports.items():
            nodes[node] = start(made, node, port)
        wait_ready(list(nodes.values()))
        yield nodes
    finally:
        stop(list(nodes.values()))


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """Within the block SIGTERM ends the demo like Ctrl-C, so the nodes are stopped too."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
