"""Output conventions shared by every command: exit statuses, JSON, loud warnings."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.text import Text

from greenlane.findings import Finding, Level
from greenlane.settings import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Exit(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    INTERNAL = 3


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def warn_loudly(settings: Settings) -> None:
    for warning in settings.warnings():
        err.print(Text(f"WARNING: {warning}", style="bold yellow"))


def error(code: str, message: str) -> None:
    err.print(Text.assemble(("error ", "bold red"), (f"[{code}] ", "red"), message))


_LEVEL_STYLE = {Level.ERROR: "bold red", Level.WARNING: "yellow", Level.INFO: "cyan"}


def finding_line(f: Finding) -> Text:
    return Text.assemble(
        "  ",
        (f"{f.level.value:<7}", _LEVEL_STYLE[f.level]),
        (f"{f.area.value:<9} ", "dim"),
        (f"{f.code} ", "bold"),
        f.message,
        (f"  at {f.path}" if f.path else "", "dim"),
    )


def print_findings(findings: Iterable[Finding]) -> None:
    for f in findings:
        out.print(finding_line(f))


def exit_status(unreadable: Sequence[bool], valid: Sequence[bool]) -> Exit:
    """2 if any input could not be read, else 1 if any has an error finding, else 0."""
    if any(unreadable):
        return Exit.USAGE
    if not all(valid):
        return Exit.FINDINGS
    return Exit.OK
