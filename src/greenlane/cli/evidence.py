"""``greenlane evidence``: check the log, and export or check one document's evidence bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from greenlane.cli.console import Exit, err, out, print_json
from greenlane.cli.database import transaction
from greenlane.errors import ConfigurationError
from greenlane.settings import Settings

app = typer.Typer(help="The evidence log: verify it, export and check bundles.")


def _node(settings: Settings) -> str:
    if settings.node_id is None:
        raise ConfigurationError(
            "whose log? set GREENLANE_NODE_ID to this node's id", code="config.invalid"
        )
    return settings.node_id


@app.command("verify")
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute the log and hold it against every signed checkpoint; exit 1 if anything broke."""
    from greenlane.trust.evidence import verify_log
    from greenlane.trust.registry import DatabaseKeys

    settings: Settings = ctx.obj
    node = _node(settings)
    with transaction(settings) as session:
        report = verify_log(session, node, DatabaseKeys(session))
    problems = [{"entry": seq, "code": code, "message": m} for seq, code, m in report.problems]
    if as_json:
        print_json(
            {
                "log": node,
                "ok": report.ok,
                "size": report.size,
                "checkpoints": report.checkpoints,
                "countersigned": report.countersigned,
                "first_broken_entry": report.first_broken,
                "problems": problems,
            }
        )
    elif report.ok:
        out.print(
            f"log {node}: {report.size} entries intact; {report.checkpoints} checkpoint(s), "
            f"{report.countersigned} countersigned by the partner"
        )
    else:
        where = (
            f"first broken entry: {report.first_broken}"
            if report.first_broken is not None
            else "the log's head"
        )
        err.print(Text(f"log {node} is NOT intact ({where})", style="bold red"))
        for p in problems:
            err.print(Text(f"  [{p['code']}] {p['message']}"))
    if not report.ok:
        raise typer.Exit(int(Exit.FINDINGS))


@app.command("bundle")
def bundle(
    ctx: typer.Context,
    document: Annotated[str, typer.Argument(help="Document row id, SHA-256 or number.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the bundle.")],
) -> None:
    """Export one document's evidence: bytes, entries, proofs, checkpoint, certificates."""
    from greenlane.trust.bundle import encode, make_bundle

    settings: Settings = ctx.obj
    with transaction(settings) as session:
        data = make_bundle(session, document, _node(settings))
    output.write_bytes(encode(data))
    out.print(
        f"wrote {output}: {len(data['entries'])} entr(y/ies) proved against the checkpoint "
        f"countersigned by {data['checkpoint']['countersigner']}"
    )


@app.command("verify-bundle")
def verify_bundle(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A bundle written by `evidence bundle`.")],
    config: Annotated[
        Path | None,
        typer.Option(help="A corridor file whose root certificates to pin (recommended)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a bundle offline, with no database; exit 1 unless every check holds."""
    from cryptography import x509

    from greenlane.corridor.agreement import load_corridor
    from greenlane.trust.bundle import verify_bundle as check

    pinned = None
    if config is not None:
        corridor = load_corridor(config)
        pinned = {}
        for country in corridor.countries:
            root = corridor.root_certificate_path(country)
            if root is not None and root.is_file():
                pinned[country] = x509.load_pem_x509_certificate(root.read_bytes())
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: {exc.strerror}", code="input.unreadable") from exc
    report = check(data, pinned)
    if as_json:
        print_json(
            {
                "path": str(path),
                "ok": report.ok,
                "document": report.document,
                "entries": report.entries,
                "checkpoint_size": report.checkpoint_size,
                "roots": report.roots,
                "roots_pinned": report.roots_pinned,
                "problems": [{"code": c, "message": m} for c, m in report.problems],
            }
        )
    elif report.ok:
        out.print(
            f"{path}: intact. {report.document}: {report.entries} log entr(y/ies) in the "
            f"checkpoint of {report.checkpoint_size}, signed by both nodes"
        )
        if not report.roots_pinned:
            roots = ", ".join(f"{c} {f[:16]}" for c, f in report.roots.items())
            err.print(
                Text(
                    f"roots not pinned (pass --config): compare their fingerprints: {roots}",
                    style="yellow",
                )
            )
    else:
        err.print(Text(f"{path}: NOT intact", style="bold red"))
        for code, message in report.problems:
            err.print(Text(f"  [{code}] {message}"))
    if not report.ok:
        raise typer.Exit(int(Exit.FINDINGS))
