"""Reading one certificate for ``show`` and ``convert``: XML or JSON, from a file or stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from lxml import etree

from greenlane.cli.console import Exit, error, print_findings
from greenlane.codes import finding
from greenlane.errors import DocumentRefused, InputError
from greenlane.safexml import XmlLimits, parse_bytes
from greenlane.settings import Settings
from greenlane.sps.identity import ROOT
from greenlane.sps.jsonform import JsonFormError, from_json
from greenlane.sps.nodes import Node
from greenlane.sps.reader import read_certificate


def read_input(source: str, settings: Settings) -> bytes:
    """The bytes of a file, or of standard input for ``-``, within the size limit."""
    limit = settings.xml_max_bytes
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(source).open("rb") as stream:
                data = stream.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{source}: no such file", code="input.not-found") from None
    except OSError as exc:
        raise InputError(f"{source}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise DocumentRefused(finding("xml.too-large", f"the input is larger than {limit} bytes"))
    return data


def load_certificate(data: bytes, settings: Settings) -> tuple[Node, bytes | None]:
    """The model of a certificate given as XML or as its JSON form (raw bytes for XML)."""
    if data.lstrip()[:1] == b"{":
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise JsonFormError(finding("json.malformed", f"not valid JSON: {exc}", "/")) from None
        return from_json(parsed), None
    document = parse_bytes(data, XmlLimits.from_settings(settings))
    found = etree.QName(document.root).text
    if found != ROOT.text:
        message = f"root element {found} is not {ROOT.text}"
        raise DocumentRefused(finding("xml.unknown-root", message, "/*"))
    return read_certificate(document).root, document.raw


def load_or_exit(source: str, settings: Settings) -> tuple[Node, bytes | None]:
    """``load_certificate`` for a command: unreadable input exits 2, a refused document 1."""
    try:
        return load_certificate(read_input(source, settings), settings)
    except InputError as exc:
        error(exc.code, exc.message)
        raise typer.Exit(int(Exit.USAGE)) from None
    except (DocumentRefused, JsonFormError) as exc:
        print_findings([exc.finding])
        raise typer.Exit(int(Exit.FINDINGS)) from None
