"""Run the real ``greenlane`` command in a subprocess and measure what it used."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str
    cpu_seconds: float
    wall_seconds: float
    max_rss_mb: float


def greenlane(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """``python -m greenlane ARGS``, with the child's own CPU time and peak resident size.

    The child is reaped with ``os.wait4`` so its resource usage is its own,
    not the sum over every child this test process ever had.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GREENLANE_")}
    environment.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "greenlane", *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        _, wait_status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(wait_status)
        out.seek(0)
        err.seek(0)
        return Run(
            status=process.returncode,
            stdout=out.read().decode(),
            stderr=err.read().decode(),
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            wall_seconds=wall,
            max_rss_mb=usage.ru_maxrss / 1024,
        )
