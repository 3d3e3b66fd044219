"""``greenlane serve``, ``init corridor``, ``deliveries`` and ``tokens``: running a node."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from greenlane.cli.console import err, out, print_json, warn_loudly
from greenlane.cli.database import migrated_engine, transaction
from greenlane.errors import ConfigurationError
from greenlane.settings import SETTINGS_FILE_ENV, Settings, load_settings

init_app = typer.Typer(help="Write a new corridor: its file, PKI, nodes and tokens.")
deliveries_app = typer.Typer(help="The outbox: what was sent, where it stands, send again.")
tokens_app = typer.Typer(help="Agencies' API tokens.")


def _now() -> datetime:
    return datetime.now(UTC)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The corridor file (default: GREENLANE_CORRIDOR_FILE).",
        dir_okay=False,
    ),
]


def node_settings(settings: Settings, corridor_file: Path, node: str) -> Settings:
    """The node's settings: its folder's settings.toml beside the corridor file, if there
    is one and GREENLANE_SETTINGS_FILE does not name another (environment still wins)."""
    candidate = corridor_file.parent / node / "settings.toml"
    if os.environ.get(SETTINGS_FILE_ENV) or not candidate.is_file():
        return settings
    os.environ[SETTINGS_FILE_ENV] = str(candidate)
    return load_settings()


def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    node: Annotated[
        str | None,
        typer.Option("--node", help="This node: its id (az-node) or its country (AZ)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default: the one in the node's endpoint).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes: more use more cores for HTTP and the checks.",
        ),
    ] = 1,
) -> None:
    """Run the node: both APIs, the delivery worker, the pull poller, /docs, /health, /metrics."""
    import httpx
    import uvicorn

    from greenlane.api.app import create_app
    from greenlane.api.tls import uvicorn_config_kwargs
    from greenlane.corridor.agreement import load_corridor
    from greenlane.exchange.context import build_context, resolve_node
    from greenlane.exchange.tls_files import corridor_roots, node_tls_files

    settings: Settings = ctx.obj
    corridor_file = config or settings.corridor_file
    if corridor_file is None:
        raise ConfigurationError(
            "which corridor? pass --config or set GREENLANE_CORRIDOR_FILE",
            code="config.corridor-missing",
        )
    corridor = load_corridor(corridor_file)
    node_id = resolve_node(corridor, node or settings.node_id or "")
    settings = node_settings(settings, corridor_file, node_id)
    warn_loudly(settings)
    node_ctx = build_context(settings, corridor, node_id, engine=migrated_engine(settings))
    listen = port if port is not None else httpx.URL(node_ctx.entry.endpoint).port or 8400
    tls: dict[str, object] = {}
    scheme = "http"
    if settings.tls_enabled:
        cert, key, password = node_tls_files(node_ctx)
        # The client certificate is asked for but optional at the handshake, so agency
        # clients can connect; every node-to-node route refuses a request without one.
        tls = dict(
            uvicorn_config_kwargs(
                cert, key, password, corridor_roots(node_ctx), require_client_cert=False
            )
        )
        scheme = "https"
    err.print(
        f"greenlane node {node_id} ({node_ctx.country}) serving {scheme}://{host}:{listen} "
        f"- API docs at /docs; receives by {node_ctx.entry.delivery}"
    )
    options: dict[str, object] = {
        "host": host,
        "port": listen,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        **tls,
    }
    if not tls:
        options["http"] = "httptools"
    if workers > 1:
        # Several processes share the checks and the HTTP work; writes still take turns
        # at the database, and one process (holding a lock) runs the background loops.
        os.environ["GREENLANE_CORRIDOR_FILE"] = str(corridor_file.resolve())
        os.environ["GREENLANE_NODE_ID"] = node_id
        uvicorn.run(
            "greenlane.api.app:from_environment",
            factory=True,
            workers=workers,
            **options,  # type: ignore[arg-type]
        )
        return
    uvicorn.run(create_app(node_ctx), **options)  # type: ignore[arg-type]


@init_app.command("corridor")
def init_corridor(
    directory: Annotated[Path, typer.Argument(help="A new or empty folder.")],
    example: Annotated[str, typer.Option("--example", help="Which example: az-ru.")] = "az-ru",
    ports: Annotated[
        str, typer.Option(help="Loopback ports of the two nodes, AZ,RU.")
    ] = "8401,8402",
    pull: Annotated[
        list[str] | None,
        typer.Option("--pull", help="A node that receives by pulling (repeatable)."),
    ] = None,
) -> None:
    """Write a complete working corridor with fresh keys: the file, both PKIs, both nodes."""
    from greenlane.corridor.scaffold import write_example

    try:
        az_port, ru_port = (int(p) for p in ports.split(","))
    except ValueError as exc:
        raise ConfigurationError(
            f"--ports wants two numbers, AZ,RU (got {ports!r})", code="config.invalid"
        ) from exc
    pulling = set(pull or ())
    made = write_example(
        directory,
        example,
        ports=(az_port, ru_port),
        delivery=(
            "pull" if "az-node" in pulling else "push",
            "pull" if "ru-node" in pulling else "push",
        ),
    )
    out.print(f"corridor written to {made.directory}")
    out.print(f"  corridor file: {made.corridor_file}")
    for node, folder in made.nodes.items():
        out.print(f"  {node}: {folder} (settings.toml, greenlane.db, keys/, tokens.json)")
    out.print("start each node with:")
    for node in made.nodes:
        out.print(f"  greenlane serve --config {made.corridor_file} --node {node}")
    err.print(
        "WARNING: each node folder holds its country's root CA key (development only): "
        "in production keep it offline."
    )


@deliveries_app.command("list")
def list_deliveries(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only this tracking state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The newest outbox messages and where each stands."""
    from sqlalchemy import select

    from greenlane.store.models import OutboxMessage

    with transaction(ctx.obj) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if state:
            query = query.where(OutboxMessage.state == state)
        rows = [
            {
                "id": m.id,
                "message_id": m.message_id,
                "to": m.receiver_node,
                "number": m.document_number,
                "status": m.document_status,
                "tracking": m.state,
                "attempts": m.attempts,
                "last_error": m.last_error,
            }
            for m in session.scalars(query)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "message", "to", "number", "status", "tracking", "attempts", "last error")
    for row in rows:
        table.add_row(*(str(row[k] if row[k] is not None else "") for k in row))
    out.print(table)


@deliveries_app.command("retry")
def retry(
    ctx: typer.Context,
    message: Annotated[str, typer.Argument(help="Outbox id or message id.")],
) -> None:
    """Send a FailedDelivery message again: a new round of attempts starts now."""
    from greenlane.exchange.delivery import retry_by_hand

    with transaction(ctx.obj) as session:
        row = retry_by_hand(session, message, _now())
        out.print(
            f"message {row.message_id} ({row.document_number} to {row.receiver_node}) "
            "is PendingDelivery again; a running node sends it within a second"
        )


@tokens_app.command("add")
def add_token(
    ctx: typer.Context,
    agency: Annotated[str, typer.Argument(help="The agency id.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Make an API token for an agency; it is shown once and stored only as a hash."""
    from greenlane.exchange.agencies import create_token

    with transaction(ctx.obj) as session:
        token = create_token(session, agency, _now(), label)
    out.print(token)


@tokens_app.command("list")
def list_tokens(ctx: typer.Context) -> None:
    """The tokens (never their values): id, agency, label, made, revoked."""
    from greenlane.exchange.agencies import tokens

    table = Table("id", "agency", "label", "created", "revoked")
    with transaction(ctx.obj) as session:
        for row in tokens(session):
            table.add_row(
                str(row.id),
                row.agency,
                row.label,
                row.created_at.isoformat(timespec="seconds"),
                row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
            )
    out.print(table)


@tokens_app.command("revoke")
def revoke_token(ctx: typer.Context, token_id: Annotated[int, typer.Argument()]) -> None:
    """Revoke a token at once."""
    from greenlane.exchange.agencies import revoke_token as revoke

    with transaction(ctx.obj) as session:
        row = revoke(session, token_id, _now())
        out.print(f"token {row.id} of {row.agency} revoked")
