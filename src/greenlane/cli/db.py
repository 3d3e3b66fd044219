"""``greenlane db``: migrations and their drift check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from greenlane.cli.console import Exit, err, out, warn_loudly
from greenlane.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

# SQLAlchemy and Alembic are imported when a db command runs, not for every command.

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


def _engine(settings: Settings) -> Engine:
    from greenlane.store.engine import engine_from_settings

    return engine_from_settings(settings)


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create the database or bring it to the newest schema."""
    settings: Settings = ctx.obj
    warn_loudly(settings)
    engine = _engine(settings)
    from greenlane.store import migrate

    migrate.upgrade(engine, revision)
    out.print(f"database at revision {migrate.current_revision(engine)}")


@app.command()
def check(ctx: typer.Context) -> None:
    """Exit 1 if the database is behind or the models differ from the migrations."""
    settings: Settings = ctx.obj
    engine = _engine(settings)
    from greenlane.store import migrate

    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        err.print(Text(f"database at revision {current}, migrations at {head}", style="red"))
        raise typer.Exit(int(Exit.FINDINGS))
    differences = migrate.drift(engine)
    if differences:
        err.print(Text("models and migrations differ:", style="bold red"))
        for difference in differences:
            err.print(f"  {difference}")
        raise typer.Exit(int(Exit.FINDINGS))
    out.print(f"database at revision {head}; models and migrations agree")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the database's revision and the newest one."""
    settings: Settings = ctx.obj
    engine = _engine(settings)
    from greenlane.store import migrate

    out.print(f"database {migrate.current_revision(engine)}, newest {migrate.head_revision()}")


@app.command(hidden=True)
def revision(
    ctx: typer.Context,
    message: Annotated[str, typer.Option("-m", "--message", help="What the migration does.")],
) -> None:
    """Write a new migration from the models (development)."""
    settings: Settings = ctx.obj
    engine = _engine(settings)
    from greenlane.store import migrate

    migrate.upgrade(engine)
    migrate.revision(message, engine)
