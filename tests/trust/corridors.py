"""The az-ru example corridor file, written where a test wants it."""

from __future__ import annotations

from pathlib import Path

from greenlane.corridor.scaffold import corridor_text

CORRIDOR = corridor_text()


def write_corridor(directory: Path, text: str = CORRIDOR) -> Path:
    path = directory / "corridor.toml"
    path.write_text(text, encoding="utf-8")
    return path
