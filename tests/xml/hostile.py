"""The hostile and broken inputs the hardened reader must refuse, each with its code.

Each case writes its file into a directory (some need a local file to aim at)
and names the one ``xml.*`` code it must be refused with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SECRET_MARKER = "GREENLANE-SECRET-7f3a9c"
RSM = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"


@dataclass(frozen=True)
class Case:
    code: str
    make: Callable[[Path], bytes]


def _secret(directory: Path) -> Path:
    secret = directory / "secret.txt"
    secret.write_text(f"{SECRET_MARKER}\n")
    return secret


def _external_entity(directory: Path) -> bytes:
    uri = _secret(directory).as_uri()
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "{uri}">]>\n'
        f'<rsm:SPSCertificate xmlns:rsm="{RSM}">&x;</rsm:SPSCertificate>\n'
    ).encode()


def _external_dtd(directory: Path) -> bytes:
    dtd = directory / "evil.dtd"
    dtd.write_text(f'<!ENTITY % s SYSTEM "{_secret(directory).as_uri()}">')
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "{dtd.as_uri()}">\n'
        f'<rsm:SPSCertificate xmlns:rsm="{RSM}"/>\n'
    ).encode()


def _billion_laughs(_directory: Path) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{"".join(entities)}]>\n<lolz>&lol9;</lolz>\n'
    ).encode()


def _deep(_directory: Path) -> bytes:
    return b"<a>" * 50_000 + b"</a>" * 50_000


def _huge_text(_directory: Path) -> bytes:
    return (
        f'<rsm:SPSCertificate xmlns:rsm="{RSM}">'.encode()
        + b"A" * (30 * 1024 * 1024)
        + (b"</rsm:SPSCertificate>")
    )


def _undeclared_prefix(_directory: Path) -> bytes:
    return b"<rsm:SPSCertificate><ram:ID>1</ram:ID></rsm:SPSCertificate>"


def _not_xml(_directory: Path) -> bytes:
    return b'{"certificate": "AZ-2026-000123", "status": 70}\n'


def _empty(_directory: Path) -> bytes:
    return b""


def _garbage(_directory: Path) -> bytes:
    # A fixed pseudo-random byte stream (reproducible, no NUL-free luck involved).
    state, out = 0x2545F491, bytearray()
    for _ in range(4096):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(state >> 23 & 0xFF)
    return bytes(out)


def _truncated(_directory: Path) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<rsm:SPSCertificate xmlns:rsm="{RSM}">\n'
        "  <rsm:SPSExchangedDocument>\n    <ram:ID xmlns:ram='urn:x'>AZ-2026-0"
    ).encode()


def _wrong_root(_directory: Path) -> bytes:
    return b'<?xml version="1.0"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl"/>\n'


CASES: dict[str, Case] = {
    "external-entity": Case("xml.external-entity", _external_entity),
    "external-dtd": Case("xml.external-dtd", _external_dtd),
    "billion-laughs": Case("xml.entity-expansion", _billion_laughs),
    "deep-nesting": Case("xml.too-deep", _deep),
    "huge-text-node": Case("xml.text-too-long", _huge_text),
    "undeclared-prefix": Case("xml.undeclared-prefix", _undeclared_prefix),
    "not-xml": Case("xml.not-xml", _not_xml),
    "empty": Case("xml.empty", _empty),
    "binary-garbage": Case("xml.not-text", _garbage),
    "truncated": Case("xml.truncated", _truncated),
    "wrong-root": Case("xml.unknown-root", _wrong_root),
}
