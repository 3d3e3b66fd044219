"""The two-country corridor file of the demo, written where a test wants it."""

from __future__ import annotations

from pathlib import Path

from greenlane.cli.demo_trust import CORRIDOR


def write_corridor(directory: Path, text: str = CORRIDOR) -> Path:
    path = directory / "corridor.toml"
    path.write_text(text, encoding="utf-8")
    return path
