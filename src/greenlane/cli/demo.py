"""``greenlane demo``: the corridor on the embedded database, as far as it is built.

Today: create the database, show the configuration, issue the AZ -> RU
certificates (five phytosanitary, one veterinary) with the canonical writer,
judge them and a hostile file with the same code as ``greenlane validate``,
show one as an officer would read it, and store them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from greenlane.cli.config import settings_table
from greenlane.cli.console import out, warn_loudly
from greenlane.cli.validate import print_result
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
    from greenlane.cli.demo_certificates import LOTS, certificate
    from greenlane.cli.show import render
    from greenlane.sps.jsonform import from_json
    from greenlane.sps.reader import read_certificate
    from greenlane.sps.writer import write_canonical
    from greenlane.store import migrate
    from greenlane.store.documents import add_document, count_documents
    from greenlane.store.engine import engine_from_settings, session_factory

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
    with session_factory(engine).begin() as session:
        for result in accepted:
            assert result.document is not None
            add_document(
                session,
                raw=result.document.raw,
                document_type=result.document_type or "unknown",
                number=result.id,
                findings=result.findings,
            )
        out.print(
            Text(
                f"stored {len(accepted)} certificates; "
                f"{count_documents(session)} document(s) in the database",
                style="green",
            )
        )
