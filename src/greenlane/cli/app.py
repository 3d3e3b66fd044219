"""The ``greenlane`` command line: one Typer app, thin over the domain packages."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from greenlane import __version__
from greenlane.cli import (
    config,
    convert,
    db,
    demo,
    evidence,
    exchange,
    show,
    trust,
    validate,
    verify,
)
from greenlane.cli.console import Exit, error
from greenlane.errors import GreenlaneError
from greenlane.settings import load_settings

app = typer.Typer(
    name="greenlane",
    help="greenlane: a green-corridor node for agri-food trade between border agencies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"greenlane {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Load and check the settings once for whichever command runs."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = settings


app.add_typer(db.app, name="db")
app.add_typer(trust.participants_app, name="participants", no_args_is_help=True)
app.add_typer(trust.keys_app, name="keys", no_args_is_help=True)
app.add_typer(evidence.app, name="evidence", no_args_is_help=True)
app.command(name="validate")(validate.validate)
app.command(name="verify")(verify.verify)
app.command(name="show")(show.show)
app.command(name="convert")(convert.convert)
app.command(name="config")(config.show)
app.command(name="demo")(demo.demo)
app.command(name="serve")(exchange.serve)
app.add_typer(exchange.init_app, name="init", no_args_is_help=True)
app.add_typer(exchange.deliveries_app, name="deliveries", no_args_is_help=True)
app.add_typer(exchange.tokens_app, name="tokens", no_args_is_help=True)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _database_unavailable(exc: BaseException) -> bool:
    """A connection or file problem from SQLAlchemy (only loaded if a command used it)."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError)


def main() -> None:
    """Entry point: stable codes for known errors, exit 3 (never a bare traceback) otherwise."""
    try:
        app(standalone_mode=True)
    except GreenlaneError as exc:
        error(exc.code, exc.message)
        sys.exit(int(Exit.USAGE))
    except Exception as exc:  # the last line of defence: say so, with a stable code
        if _database_unavailable(exc):
            error("db.unavailable", f"cannot use the database: {_first_line(exc)}")
            sys.exit(int(Exit.USAGE))
        logging.getLogger("greenlane").debug("internal error", exc_info=True)
        error(
            "internal",
            f"{type(exc).__name__}: {_first_line(exc)} (GREENLANE_LOG_LEVEL=DEBUG shows where)",
        )
        sys.exit(int(Exit.INTERNAL))
