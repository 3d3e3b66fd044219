"""``greenlane config``: the settings in force, with secrets masked."""

from __future__ import annotations

import typer
from rich.table import Table

from greenlane.cli.console import out, warn_loudly
from greenlane.settings import Settings


def settings_table(settings: Settings) -> Table:
    table = Table(title="configuration", show_lines=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_column("source", style="dim")
    explicit = settings.model_fields_set
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        shown = "********" if "secret" in name else str(value)
        source = "set" if name in explicit else "default"
        table.add_row(f"GREENLANE_{name.upper()}", shown, source)
    return table


def show(ctx: typer.Context) -> None:
    """Print the configuration in force (secrets masked) and any warning about it."""
    settings: Settings = ctx.obj
    warn_loudly(settings)
    out.print(settings_table(settings))
