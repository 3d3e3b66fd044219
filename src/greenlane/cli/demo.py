"""``greenlane demo``: the AZ -> RU corridor for real, two nodes on loopback, one day of work.

It writes a fresh corridor (``greenlane init corridor``), starts the AZ and the
RU node as two ``greenlane serve`` processes, each on its own SQLite file,
plays a day through the AZ agency API with a live board (:mod:`demo_day`),
then checks on both sides that everything adds up (:mod:`demo_reconcile`).
Without ``--exit`` both nodes stay up for the user to explore until Ctrl-C;
with it the command stops them and exits 0 only if everything reconciles,
which is what CI runs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from greenlane.cli.console import out, warn_loudly
from greenlane.errors import GreenlaneError

if TYPE_CHECKING:
    from greenlane.cli.demo_nodes import NodeProcess

DEFAULT_DIR = Path("var/demo")
MARKER = ".greenlane-demo"
"""Written into the demo's folder: the demo wipes only a folder that holds it (or its default)."""
NODES = ("az-node", "ru-node")


def _ports(text: str) -> tuple[int, int]:
    try:
        az, ru = (int(part) for part in text.split(","))
    except ValueError as exc:
        raise GreenlaneError(
            f"--ports wants two port numbers, AZ,RU (got {text!r})", code="config.invalid"
        ) from exc
    if not all(1 <= port <= 65535 for port in (az, ru)):
        raise GreenlaneError(f"--ports {text}: ports are 1 to 65535", code="config.invalid")
    return az, ru


def _fresh(folder: Path) -> Path:
    """Empty ``folder`` for a new run: only if it is new, empty, or an earlier demo's."""
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        ours = (folder / MARKER).exists() or folder == DEFAULT_DIR.resolve()
        if not ours:
            raise GreenlaneError(
                f"{folder} is not empty and not a demo's folder: the demo wipes its folder "
                "on every run, so give it a new or empty one with --dir",
                code="demo.dir-not-empty",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _screen() -> Console:
    """The terminal as it is; when captured (CI, tests), wide enough for the tables."""
    if out.is_terminal:
        return out
    return Console(highlight=False, soft_wrap=True, width=140)


def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="The demo's folder, wiped and written anew on every run "
            "(default: var/demo; with --exit a temporary folder).",
            file_okay=False,
        ),
    ] = None,
    exit_after: Annotated[
        bool,
        typer.Option(
            "--exit",
            help="Stop both nodes after the day and exit 0 only if everything reconciles (CI).",
        ),
    ] = False,
    ports: Annotated[
        str, typer.Option(help="Loopback ports of the AZ and the RU node, AZ,RU.")
    ] = "8401,8402",
) -> None:
    """Run the AZ and RU nodes on loopback and play a day of certificates between them."""
    from greenlane.cli import demo_nodes
    from greenlane.cli.demo_day import play
    from greenlane.cli.demo_reconcile import countersigned_to_the_end, reconcile, summary
    from greenlane.corridor.scaffold import write_example

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    az_port, ru_port = _ports(ports)
    demo_nodes.check_ports((az_port, ru_port))
    temporary = directory is None and exit_after
    if temporary:
        folder = Path(tempfile.mkdtemp(prefix="greenlane-demo-"))
    else:
        folder = _fresh(directory or DEFAULT_DIR)
    screen = _screen()
    screen.rule("greenlane demo: the AZ -> RU green corridor, two nodes on loopback")
    screen.print(f"writing a fresh corridor to {folder}: both countries' PKI, nodes and tokens")
    made = write_example(folder, ports=(az_port, ru_port))
    (folder / MARKER).write_text("written by `greenlane demo`: wiped on its next run\n")
    warn_loudly(made.settings(NODES[0]))
    tokens = {**made.tokens(NODES[0]), **made.tokens(NODES[1])}
    ok = False
    with (
        demo_nodes.sigterm_stops(),
        demo_nodes.running(made, dict(zip(NODES, (az_port, ru_port), strict=True))) as nodes,
    ):
        for node in nodes.values():
            screen.print(f"{node.node} serving {node.url} (pid {node.process.pid}, log {node.log})")
        urls = {name: node.url for name, node in nodes.items()}
        screen.rule("a day at the AZ Food Safety Agency")
        day = play(urls[NODES[0]], urls[NODES[1]], tokens, screen, pace=0 if exit_after else 0.4)
        screen.print()
        screen.rule("reconciliation")
        screen.print("waiting for each node to countersign the other's evidence log…")
        countersigned_to_the_end(made)
        result = reconcile(made, day, urls, tokens)
        screen.print(summary(result))
        ok = result.ok
        if ok:
            screen.print(
                Text(
                    f"everything reconciles: {result.expected_certificates} certificates, "
                    f"{result.expected_messages} messages delivered and receipted, statuses in "
                    "step on both sides, both evidence logs verified",
                    style="bold green",
                )
            )
        else:
            screen.print(Text("DOES NOT RECONCILE:", style="bold red"))
            for problem in result.problems:
                screen.print(Text(f"  {problem}", style="red"))
        if not exit_after:
            ok = _stay_up(screen, made.corridor_file, nodes, tokens) and ok
    screen.print("both nodes stopped")
    if temporary:
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            screen.print(f"the demo's folder is kept for a look: {folder}")
    raise typer.Exit(0 if ok else 1)


def _stay_up(
    screen: Console,
    corridor_file: Path,
    nodes: dict[str, NodeProcess],
    tokens: dict[str, str],
) -> bool:
    """Show where the nodes are and wait for Ctrl-C; False if a node stopped by itself.

    The one wait without a time bound: the user ends it.
    """
    from greenlane.corridor.agreement import load_corridor

    corridor = load_corridor(corridor_file)
    screen.rule("both nodes are running")
    for node in nodes.values():
        screen.print(f"  {node.node}  agency API {node.url}/api/v1   docs {node.url}/docs")
    screen.print("agency tokens (also in each node's tokens.json):")
    for country in corridor.countries.values():
        for agency in country.agencies:
            roles = ", ".join(role.value for role in agency.roles)
            screen.print(f"  {agency.id:<11} {roles:<17} {tokens.get(agency.id, '?')}")
    az, ru = nodes[NODES[0]].url, nodes[NODES[1]].url
    screen.print("try:")
    screen.print(
        f'  curl -s -H "Authorization: Bearer {tokens.get("ru-rsn", "?")}" '
        f'"{ru}/api/v1/certificates?direction=received"'
    )
    settings_file = corridor_file.parent / NODES[0] / "settings.toml"
    screen.print(f"  GREENLANE_SETTINGS_FILE={settings_file} greenlane deliveries list")
    screen.print(f"  GREENLANE_SETTINGS_FILE={settings_file} greenlane evidence verify")
    screen.print(f"  open {az}/docs")
    screen.print(Text("Ctrl-C stops both nodes.", style="bold"))
    try:
        while all(node.alive() for node in nodes.values()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        screen.print("\nCtrl-C: stopping both nodes")
        return True
    for node in nodes.values():
        if not node.alive():
            screen.print(
                Text(
                    f"{node.node} stopped by itself (exit status {node.process.returncode}); "
                    f"its log: {node.log}",
                    style="bold red",
                )
            )
    return False
