"""Every bad input through the real command: exit 1, its own code, under 1 s and 150 MB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.xml.hostile import CASES, SECRET_MARKER

from .run import greenlane

CPU_SECONDS = 1.0
MAX_RSS_MB = 150.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_through_the_command(name: str, tmp_path: Path) -> None:
    """The command refuses the file with the case's code, leaks nothing, and stays small."""
    case = CASES[name]
    path = tmp_path / f"{name}.xml"
    path.write_bytes(case.make(tmp_path))
    run = greenlane("validate", "--json", str(path))
    assert run.status == 1, run.stderr
    [result] = json.loads(run.stdout)
    assert result["valid"] is False
    assert [(f["level"], f["area"], f["code"]) for f in result["findings"]] == [
        ("error", "xml", case.code)
    ]
    assert SECRET_MARKER not in run.stdout + run.stderr
    assert run.cpu_seconds < CPU_SECONDS, f"{run.cpu_seconds:.2f} s of CPU"
    assert run.max_rss_mb < MAX_RSS_MB, f"{run.max_rss_mb:.0f} MB resident"
