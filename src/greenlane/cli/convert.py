"""``greenlane convert``: a certificate as JSON, or back as XML (faithful or canonical)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from greenlane.cli.console import Exit, error, print_findings
from greenlane.settings import Settings


class Target(StrEnum):
    JSON = "json"
    XML = "xml"


def convert(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="An XML or JSON certificate, or - for stdin.")],
    to: Annotated[Target, typer.Option("--to", help="The form to write.")],
    canonical: Annotated[
        bool, typer.Option("--canonical", help="Schema order, schema-valid (XML only).")
    ] = False,
) -> None:
    """Write a certificate to standard output as JSON or XML."""
    from greenlane.cli.documents import load_or_exit
    from greenlane.sps.jsonform import to_json
    from greenlane.sps.writer import NotCanonical, write_canonical, write_faithful

    settings: Settings = ctx.obj
    model, _raw = load_or_exit(source, settings)
    if to is Target.JSON:
        sys.stdout.write(json.dumps(to_json(model), ensure_ascii=False, indent=2) + "\n")
        return
    try:
        output = write_canonical(model) if canonical else write_faithful(model)
    except NotCanonical as exc:
        error(exc.code, exc.message)
        print_findings(exc.findings)
        raise typer.Exit(int(Exit.FINDINGS)) from None
    sys.stdout.buffer.write(output + (b"" if output.endswith(b"\n") else b"\n"))
