"""``greenlane show``: a certificate as a person reads it, with its findings."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from greenlane.cli.console import Exit, out, print_findings
from greenlane.findings import Finding, has_errors
from greenlane.safexml import XmlDocument, XmlLimits, parse_bytes
from greenlane.settings import Settings
from greenlane.sps import codelists
from greenlane.sps.datetimes import parse_datetime
from greenlane.sps.nodes import Node

# The model, its tables and the checks load when the command runs, not for every command.


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text(value: Any) -> str:
    """The text of a leaf, a list of leaves (joined), or nothing."""
    parts = []
    for item in _many(value):
        if isinstance(item, Node):
            item = getattr(item, "value", "")
        if item:
            parts.append(str(item).strip())
    return " / ".join(parts)


def path(node: Any, *fields: str) -> Any:
    """Follow fields through the model, taking the first of any list; None if absent."""
    for name in fields:
        if node is None:
            return None
        node = getattr(node, name, None)
        if isinstance(node, list) and name != fields[-1]:
            node = node[0] if node else None
    return node


def _when(node: Any) -> str:
    written = text(path(node, "date_time_string")) or text(path(node, "date_time"))
    if not written:
        return ""
    moment = parse_datetime(written)
    if moment.value is None:
        return written
    return f"{written}  (UTC {moment.value:%Y-%m-%d %H:%M})"


def _party(party: Any) -> str:
    if party is None:
        return ""
    name = text(path(party, "name"))
    address = path(party, "specified_sps_address")
    lines = [text(path(address, f)) for f in ("line_one", "line_two", "line_three", "city_name")]
    where = ", ".join(x for x in lines if x)
    country = text(path(address, "country_id"))
    return " — ".join(x for x in (name, where, country) if x)


def _country(node: Any) -> str:
    code = text(path(node, "id"))
    name = codelists.countries().get(code, "") or text(path(node, "name"))
    return f"{code} {name}".strip()


def _place(node: Any) -> str:
    return " ".join(x for x in (text(path(node, "id")), text(path(node, "name"))) if x)


def _measure(node: Any) -> str:
    if node is None:
        return ""
    return f"{node.value} {node.unit_code or ''}".strip()


def _header(root: Any) -> Table:
    document = root.sps_exchanged_document
    type_code, status = text(path(document, "type_code")), text(path(document, "status_code"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("certificate", text(path(document, "id"))),
        ("type", f"{type_code} {codelists.document_types().get(type_code, '')}".strip()),
        ("status", f"{status} {codelists.status_codes().get(status, '')}".strip()),
        ("issued", _when(path(document, "issue_date_time"))),
        ("issuer", _party(path(document, "issuer_sps_party"))),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _route(consignment: Any) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("consignor", _party(path(consignment, "consignor_sps_party")))
    table.add_row("consignee", _party(path(consignment, "consignee_sps_party")))
    route = [_country(path(consignment, "export_sps_country"))]
    route += [f"re-export {_country(c)}" for c in _many(consignment.re_export_sps_country)]
    route += [f"transit {_country(c)}" for c in _many(consignment.transit_sps_country)]
    route.append(_country(path(consignment, "import_sps_country")))
    table.add_row("route", " → ".join(x for x in route if x))
    table.add_row("unloading", _place(path(consignment, "unloading_baseport_sps_location")))
    table.add_row(
        "inspected at",
        _place(path(consignment, "examination_sps_event", "occurrence_sps_location")),
    )
    for movement in _many(consignment.main_carriage_sps_transport_movement):
        means = text(path(movement, "used_sps_transport_means", "name"))
        table.add_row("transport", f"mode {text(path(movement, 'mode_code'))} {means}".strip())
    return table


def _lines(consignment: Any) -> tuple[Table, list[tuple[str, str]], list[tuple[str, str]]]:
    table = Table(show_lines=False)
    for column in ("#", "goods", "HS", "net", "gross", "packages", "origin"):
        table.add_column(column)
    notes: list[tuple[str, str]] = []
    treatments: list[tuple[str, str]] = []
    for item in _many(consignment.included_sps_consignment_item):
        for line in _many(item.included_sps_trade_line_item):
            number = text(line.sequence_numeric)
            goods = " / ".join(
                x
                for x in (
                    text(line.description),
                    text(line.common_name),
                    text(line.scientific_name),
                )
                if x
            )
            hs = ", ".join(
                text(c.class_code)
                for c in _many(line.applicable_sps_classification)
                if text(c.system_name) == "HS"
            )
            packages = ", ".join(
                f"{text(p.item_quantity)} {text(p.type_code)}".strip()
                for p in _many(line.physical_sps_package)
            )
            origin = ", ".join(_country(c) for c in _many(line.origin_sps_country))
            table.add_row(
                number,
                goods,
                hs,
                _measure(line.net_weight_measure),
                _measure(line.gross_weight_measure),
                packages,
                origin,
            )
            notes += [
                (f"line {number} {text(n.subject)}", text(n.content))
                for n in _many(line.additional_information_sps_note)
            ]
            for process in _many(line.applied_sps_process):
                characteristics = "; ".join(
                    f"{text(c.type_code)} {text(c.description)} {_measure(c.value_measure)}".strip()
                    for c in _many(process.applicable_sps_process_characteristic)
                )
                treatments.append((f"line {number} {text(process.type_code)}", characteristics))
    return table, notes, treatments


def show(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="An XML or JSON certificate, or - for stdin.")],
) -> None:
    """Print a certificate as a person reads it: parties, route, lines, notes, findings."""
    from greenlane.cli.documents import load_or_exit
    from greenlane.sps.checks import check_certificate
    from greenlane.sps.writer import to_element

    settings: Settings = ctx.obj
    root, raw = load_or_exit(source, settings)
    if raw is not None:
        document = parse_bytes(raw, XmlLimits.from_settings(settings))
    else:  # from JSON: judge the XML it stands for
        document = XmlDocument(raw=b"", root=to_element(root))
    findings: list[Finding] = check_certificate(document, settings)
    render(root, findings)
    raise typer.Exit(int(Exit.FINDINGS if has_errors(findings) else Exit.OK))


def render(root: Node, findings: list[Finding]) -> None:
    """Print one certificate and its findings."""
    model: Any = root
    out.rule(Text(f"certificate {text(path(model, 'sps_exchanged_document', 'id'))}", style="bold"))
    out.print(_header(model))
    consignment = model.sps_consignment
    if consignment is not None:
        out.rule("consignment")
        out.print(_route(consignment))
        table, notes, treatments = _lines(consignment)
        out.print(table)
        document_notes = [
            (text(n.subject), text(n.content))
            for n in _many(path(model, "sps_exchanged_document", "included_sps_note"))
        ]
        for title, rows in (("notes", document_notes + notes), ("treatments", treatments)):
            if rows:
                out.rule(title)
                for subject, content in rows:
                    out.print(Text.assemble((f"{subject}: ", "bold"), content))
    out.rule("findings")
    if findings:
        print_findings(findings)
    else:
        out.print(Text("no findings", style="green"))
