"""``greenlane demo``: the corridor on the embedded database, as far as it is built.

Today: create the database, show the configuration, issue the AZ -> RU
certificates (five phytosanitary, one veterinary) with the canonical writer,
judge them and a hostile file with the same code as ``greenlane validate``,
show one as an officer would read it; then set up both countries' PKI, sign
each certificate as the AZ NPPO, verify it as a receiver would, store it, log
it, have both nodes sign the evidence log, and export one evidence bundle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from greenlane.cli.config import settings_table
from greenlane.cli.console import out, print_findings, warn_loudly
from greenlane.cli.validate import print_result
from greenlane.findings import Level
from greenlane.settings import Settings
from greenlane.validation import validate_path

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>\n"
)


def demo(
    ctx: typer.Context,
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its documents.")] = Path(
        "var/demo"
    ),
) -> None:
    """Run the corridor demo on the configured (by default embedded SQLite) database."""
    from greenlane.cli import demo_trust
    from greenlane.cli.demo_certificates import LOTS, certificate
    from greenlane.cli.show import render
    from greenlane.sps.jsonform import from_json
    from greenlane.sps.reader import read_certificate
    from greenlane.sps.writer import write_canonical
    from greenlane.store import migrate
    from greenlane.store.documents import count_documents
    from greenlane.store.engine import engine_from_settings, session_factory
    from greenlane.trust.bundle import encode, make_bundle, verify_bundle
    from greenlane.trust.evidence import verify_log
    from greenlane.trust.registry import DatabaseKeys

    settings: Settings = ctx.obj
    warn_loudly(settings)
    out.rule("greenlane demo")
    out.print(settings_table(settings))

    engine = engine_from_settings(settings)
    migrate.upgrade(engine)
    out.print(f"database ready at revision {migrate.current_revision(engine)}")

    workdir.mkdir(parents=True, exist_ok=True)
    issued = []
    for lot in LOTS:
        path = workdir / f"{lot.number}.xml"
        path.write_bytes(write_canonical(from_json(certificate(lot))))
        issued.append(path)
    hostile = workdir / "billion-laughs.xml"
    hostile.write_bytes(BILLION_LAUGHS)

    out.rule("validate")
    results = [validate_path(path, settings) for path in (*issued, hostile)]
    for result in results:
        print_result(result)
    *accepted, refused = results
    first = accepted[0]
    if first.document is not None:
        render(read_certificate(first.document).root, first.findings)

    if not all(r.valid for r in accepted) or refused.valid:
        raise typer.Exit(1)

    out.rule("sign, verify and record")
    now = datetime.now(UTC)
    lots = {lot.number: lot for lot in LOTS}
    with session_factory(engine).begin() as session:
        provider = demo_trust.set_up(session, workdir, settings, now)
        documents = [
            (path, path.read_bytes(), lots[path.stem].type_code == "853") for path in issued
        ]
        recorded = demo_trust.sign_and_record(session, provider, documents, now)
        point = demo_trust.checkpoint(session, provider, now)
        for item in recorded:
            mark, style = ("trusted", "bold green") if item.trusted else ("untrusted", "bold red")
            out.print(Text.assemble((f"{mark:<10} ", style), str(item.path)))
            print_findings(f for f in item.findings if f.level is not Level.INFO)
        out.print(
            f"{count_documents(session)} document(s) in the database; evidence log of "
            f"{demo_trust.OUR_NODE} at {point.size} entries, checkpoint countersigned by "
            f"{demo_trust.PARTNER_NODE}"
        )
        report = verify_log(session, demo_trust.OUR_NODE, DatabaseKeys(session))
        bundle_path = workdir / "evidence-bundle.json"
        bundle_path.write_bytes(
            encode(make_bundle(session, recorded[0].sha256, demo_trust.OUR_NODE))
        )
    checked = verify_bundle(bundle_path.read_bytes())
    out.print(
        Text(
            f"evidence log: {'intact' if report.ok else 'BROKEN'} ({report.size} entries); "
            f"bundle {bundle_path}: {'intact' if checked.ok else 'BROKEN'}",
            style="green" if report.ok and checked.ok else "bold red",
        )
    )
    out.print(
        f"try: GREENLANE_NODE_ID={demo_trust.OUR_NODE} greenlane evidence verify; "
        f"greenlane verify {recorded[0].path}; "
        f"greenlane evidence verify-bundle --config {workdir / 'corridor.toml'} {bundle_path}"
    )
    if not all(item.trusted for item in recorded) or not report.ok or not checked.ok:
        raise typer.Exit(1)
