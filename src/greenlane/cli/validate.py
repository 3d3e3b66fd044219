"""``greenlane validate``: judge documents and report findings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.text import Text

from greenlane.cli.console import err, exit_status, out, print_findings, print_json
from greenlane.settings import Settings
from greenlane.validation import ValidationResult, validate_path

PROGRESS_AFTER = 3
"""Show a progress bar (on a terminal) when judging more files than this."""


def run_validation(paths: list[Path], settings: Settings) -> list[ValidationResult]:
    if len(paths) <= PROGRESS_AFTER or not err.is_terminal:
        return [validate_path(path, settings) for path in paths]
    results = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("validating", total=len(paths))
        for path in paths:
            results.append(validate_path(path, settings))
            progress.advance(task)
    return results


def print_result(result: ValidationResult) -> None:
    mark, style = ("valid", "bold green") if result.valid else ("invalid", "bold red")
    if result.unreadable:
        mark = "unreadable"
    described = " ".join(part for part in (result.document_type, result.id) if part)
    out.print(Text.assemble((f"{mark:<10} ", style), result.path, (f"  {described}", "dim")))
    print_findings(result.findings)


def validate(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files to judge.", show_default=False)],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON array, an object per input.")
    ] = False,
) -> None:
    """Judge documents; exit 0 if none has an error finding, 1 if some has, 2 if unreadable."""
    settings: Settings = ctx.obj
    results = run_validation(paths, settings)
    if as_json:
        print_json([result.to_dict() for result in results])
    else:
        for result in results:
            print_result(result)
    status = exit_status([r.unreadable for r in results], [r.valid for r in results])
    raise typer.Exit(int(status))
