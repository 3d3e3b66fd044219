"""``greenlane demo``: two real node processes, a day of certificates, a reconciliation."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .run import Run, greenlane

DEMO_SECONDS = 60.0
"""The most a whole demo may take here, nodes started and stopped included."""
READY = "Ctrl-C stops both nodes."


def free_ports(count: int = 2) -> list[int]:
    """Distinct free loopback ports: bound together, so none comes twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def node_pids(stdout: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"serving http://\S+ \(pid (\d+),", stdout)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    """One ``greenlane demo --exit`` run, kept in a folder of its own for the tests to read."""
    base = tmp_path_factory.mktemp("demo")
    folder = base / "corridor"
    az, ru = free_ports()
    run = greenlane("demo", "--exit", "--dir", str(folder), "--ports", f"{az},{ru}", cwd=base)
    return run, folder


def test_demo_exit_reconciles_in_bounded_time(day: tuple[Run, Path]) -> None:
    """--exit plays the day and exits 0 with every count reconciled, its nodes gone."""
    run, _ = day
    assert run.status == 0, run.stdout + run.stderr
    assert run.wall_seconds < DEMO_SECONDS
    assert "everything reconciles" in run.stdout
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:5]]
        for line in run.stdout.splitlines()
        if line.startswith("│") and line.count("│") == 5
    }
    assert rows["certificates"] == ["7 issued", "7 received", "yes"]
    assert rows["messages"] == ["8 sent, 8 delivered", "8 arrived", "yes"]
    assert rows["signed receipts"] == [
        "8/8 verified with ru-node's key",
        "8/8 the same bytes",
        "yes",
    ]
    assert rows["statuses in step"] == ["7/7", "7/7", "yes"]
    az_log, ru_log, agrees = rows["evidence log"]
    assert az_log.startswith("verified, ")
    assert ru_log.startswith("verified, ")
    assert agrees == "yes"
    assert rows["hostile file"][0] == "refused (xml.entity-expansion)"
    pids = node_pids(run.stdout)
    assert len(pids) == 2
    assert all(gone(pid) for pid in pids)


def test_each_node_database_holds_the_day(day: tuple[Run, Path]) -> None:
    """RU's own database shows the withdrawal and the replacement; AZ's outbox is all receipted;
    each node's evidence log verifies with the ordinary command."""
    run, folder = day
    assert run.status == 0, run.stdout + run.stderr
    with sqlite3.connect(folder / "ru-node" / "greenlane.db") as db:
        received = db.execute(
            "SELECT number, status, replaced_by FROM certificates WHERE direction = 'received' "
            "ORDER BY number"
        ).fetchall()
    assert received == [
        ("AZ-2026-000123", "70", None),
        ("AZ-2026-000124", "40", None),
        ("AZ-2026-000125", "70", None),
        ("AZ-2026-000126", "superseded", "AZ-2026-000128"),
        ("AZ-2026-000127", "70", None),
        ("AZ-2026-000128", "70", None),
        ("AZ-2026-V00031", "70", None),
    ]
    with sqlite3.connect(folder / "az-node" / "greenlane.db") as db:
        states = db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
    assert states == [("Delivered", 8)]
    for node in ("az-node", "ru-node"):
        env = {"GREENLANE_SETTINGS_FILE": str(folder / node / "settings.toml")}
        verified = greenlane("evidence", "verify", env=env)
        assert verified.status == 0, verified.stderr


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, list[int]]]:
    """``greenlane demo`` without --exit, in the background; killed if a test leaves it."""
    ports = free_ports()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GREENLANE_")}
    output = tmp_path / "stdout.txt"
    with output.open("wb") as stdout, (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "greenlane", "demo"),
                *("--dir", str(tmp_path / "corridor"), "--ports", ",".join(map(str, ports))),
            ],
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        yield process, output, ports
    finally:
        if process.poll() is None:
            process.terminate()  # the demo stops its nodes on SIGTERM too
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_demo_stays_up_until_ctrl_c_then_stops_both_nodes(
    demo_process: tuple[subprocess.Popen[bytes], Path, list[int]],
) -> None:
    """Without --exit both nodes keep serving after the day; Ctrl-C stops them and exits 0."""
    process, output, ports = demo_process
    deadline = time.monotonic() + DEMO_SECONDS
    for _ in range(int(DEMO_SECONDS / 0.2)):
        if READY in output.read_text() or process.poll() is not None:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    text = output.read_text()
    assert READY in text, text
    assert "everything reconciles" in text
    assert "/docs" in text
    assert "ru-rsn" in text
    with httpx.Client(trust_env=False, timeout=5) as client:
        for port, node in zip(ports, ("az-node", "ru-node"), strict=True):
            assert client.get(f"http://127.0.0.1:{port}/health").json()["node"] == node
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert "both nodes stopped" in output.read_text()
    pids = node_pids(text)
    assert len(pids) == 2
    assert all(gone(pid) for pid in pids)


def test_a_busy_port_is_refused_with_its_code(tmp_path: Path) -> None:
    """A port already listening on loopback: demo.port-busy, exit 2, nothing written."""
    [free] = free_ports(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        run = greenlane("demo", "--exit", "--dir", str(tmp_path / "d"), "--ports", f"{busy},{free}")
    assert run.status == 2
    assert "[demo.port-busy]" in run.stderr
    assert str(busy) in run.stderr
    assert not (tmp_path / "d").exists()


def test_the_demo_never_wipes_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """--dir naming someone's non-empty folder: demo.dir-not-empty, the folder untouched."""
    (tmp_path / "notes.txt").write_text("mine")
    az, ru = free_ports()
    run = greenlane("demo", "--exit", "--dir", str(tmp_path), "--ports", f"{az},{ru}")
    assert run.status == 2
    assert "[demo.dir-not-empty]" in run.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
