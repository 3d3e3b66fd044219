"""``greenlane demo``: the corridor on the embedded database, as far as it is built.

Today: create the database, show the configuration, write an AZ -> RU
phytosanitary certificate and a hostile file, judge both with the same code as
``greenlane validate``, and store the certificate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from lxml import etree
from lxml.builder import ElementMaker
from rich.text import Text

from greenlane.cli.config import settings_table
from greenlane.cli.console import out, warn_loudly
from greenlane.cli.validate import print_result
from greenlane.safexml import XmlLimits
from greenlane.settings import Settings
from greenlane.sps.identity import RAM, RSM, UDT
from greenlane.validation import validate_path

_NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT}


def tomato_certificate() -> bytes:
    """ePhyto AZ-2026-000123: 20 t of tomatoes, Baku to Moscow through Samur."""
    rsm, ram, udt = (ElementMaker(namespace=ns, nsmap=_NSMAP) for ns in (RSM, RAM, UDT))

    def country(tag: str, code: str, name: str) -> etree._Element:
        element: etree._Element = getattr(ram, tag)(ram.ID(code), ram.Name(name))
        return element

    document = rsm.SPSCertificate(
        rsm.SPSExchangedDocument(
            ram.Name("Phytosanitary Certificate"),
            ram.ID("AZ-2026-000123"),
            ram.TypeCode("851"),
            ram.StatusCode("70"),
            ram.IssueDateTime(udt.DateTimeString("2026-09-14T08:30:00+04:00")),
            ram.IssuerSPSParty(ram.Name("Food Safety Agency of the Republic of Azerbaijan")),
            ram.IncludedSPSNote(ram.Subject("SPSFL"), ram.Content("1")),
            ram.SignatorySPSAuthentication(
                ram.ActualDateTime(udt.DateTimeString("2026-09-14T08:30:00+04:00")),
                ram.IssueSPSLocation(ram.ID("AZBAK"), ram.Name("Baku")),
                ram.ProviderSPSParty(ram.Name("Food Safety Agency of the Republic of Azerbaijan")),
            ),
        ),
        rsm.SPSConsignment(
            ram.ConsignorSPSParty(
                ram.Name("Frukt Treyd MMC"),
                ram.SpecifiedSPSAddress(ram.LineOne("Heydər Əliyev prospekti 15, Bakı")),
            ),
            ram.ConsigneeSPSParty(
                ram.Name("ООО «Фрукт Трейд»"),
                ram.SpecifiedSPSAddress(ram.LineOne("ул. Кировоградская, 15, Москва")),
            ),
            country("ExportSPSCountry", "AZ", "Azerbaijan"),
            country("ImportSPSCountry", "RU", "Russian Federation"),
            ram.UnloadingBaseportSPSLocation(ram.ID("RUMOW"), ram.Name("Moscow")),
            ram.ExaminationSPSEvent(ram.OccurrenceSPSLocation(ram.ID("AZBAK"), ram.Name("Baku"))),
            ram.MainCarriageSPSTransportMovement(
                ram.ModeCode("3"), ram.UsedSPSTransportMeans(ram.Name("Truck 10-AB-123"))
            ),
            ram.IncludedSPSConsignmentItem(
                ram.IncludedSPSTradeLineItem(
                    ram.SequenceNumeric("1"),
                    ram.Description("Fresh tomatoes"),
                    ram.CommonName("Tomato"),
                    ram.ScientificName("Solanum lycopersicum"),
                    ram.IntendedUse("Consumption"),
                    ram.NetWeightMeasure("20000", unitCode="KGM"),
                    ram.GrossWeightMeasure("21600", unitCode="KGM"),
                    ram.ApplicableSPSClassification(ram.SystemName("HS"), ram.ClassCode("070200")),
                    ram.PhysicalSPSPackage(
                        ram.LevelCode("4"), ram.TypeCode("CT"), ram.ItemQuantity("2400")
                    ),
                    country("OriginSPSCountry", "AZ", "Azerbaijan"),
                )
            ),
        ),
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


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
    certificate = workdir / "AZ-2026-000123.xml"
    certificate.write_bytes(tomato_certificate())
    hostile = workdir / "billion-laughs.xml"
    hostile.write_bytes(BILLION_LAUGHS)

    limits = XmlLimits.from_settings(settings)
    out.rule("validate")
    results = [validate_path(path, limits) for path in (certificate, hostile)]
    for result in results:
        print_result(result)

    accepted = results[0]
    if not accepted.valid or accepted.document is None:
        raise typer.Exit(1)
    with session_factory(engine).begin() as session:
        stored = add_document(
            session,
            raw=accepted.document.raw,
            document_type=accepted.document_type or "unknown",
            number=accepted.id,
            findings=accepted.findings,
        )
        out.print(
            Text(
                f"stored {stored.document_number} ({stored.size} bytes, sha256 "
                f"{stored.sha256[:16]}…); {count_documents(session)} document(s) in the database",
                style="green",
            )
        )
    if results[1].valid:
        raise typer.Exit(1)
