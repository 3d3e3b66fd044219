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


# Runs `python -m greenlane` and, at exit, writes the process's peak resident size
# (VmHWM) to the file named in _RSS_REPORT. VmHWM belongs to the memory map made by
# exec, so unlike ru_maxrss it does not count the test process the child was forked
# from.
_WRAPPER = """
import atexit, os, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["_RSS_REPORT"], "w") as report:
        report.write(peak)

atexit.register(_report)
sys.argv[0] = "greenlane"
runpy.run_module("greenlane", run_name="__main__", alter_sys=True)
"""


def greenlane(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """``python -m greenlane ARGS``, with the child's own CPU time and peak resident size.

    The child is reaped with ``os.wait4`` so its CPU time is its own, not the sum
    over every child this test process ever had.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GREENLANE_")}
    environment.update(env or {})
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        environment["_RSS_REPORT"] = rss.name
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, *args],
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
            max_rss_mb=int(rss.read() or 0) / 1024,
        )
