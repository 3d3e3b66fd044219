"""The registry of stable finding and error codes.

Every code a user can meet is declared here once, with its area, level and a
one-line meaning; ``docs/codes.md`` lists them all (a test keeps the two equal).
Build findings with :func:`finding` so a code can never drift from its level.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenlane.findings import Area, Finding, Level


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    area: Area
    level: Level
    meaning: str


def _codes(*entries: Code) -> dict[str, Code]:
    table: dict[str, Code] = {}
    for entry in entries:
        if entry.code in table:  # pragma: no cover - guards the table itself
            raise ValueError(f"duplicate code {entry.code}")
        table[entry.code] = entry
    return table


_E = Level.ERROR

CODES: dict[str, Code] = _codes(
    # Input that cannot be read at all (exit status 2).
    Code("input.not-found", Area.XML, _E, "The named file does not exist."),
    Code(
        "input.unreadable",
        Area.XML,
        _E,
        "The file exists but cannot be read (permissions, a directory).",
    ),
    # The hardened XML reader.
    Code("xml.empty", Area.XML, _E, "The input is empty."),
    Code("xml.too-large", Area.XML, _E, "The input is larger than GREENLANE_XML_MAX_BYTES."),
    Code("xml.not-text", Area.XML, _E, "The input is binary data, not text."),
    Code("xml.not-xml", Area.XML, _E, "The input is text but not XML (no root element)."),
    Code("xml.truncated", Area.XML, _E, "The document ends before its root element is closed."),
    Code("xml.malformed", Area.XML, _E, "The document is not well-formed XML."),
    Code(
        "xml.undeclared-prefix", Area.XML, _E, "A namespace prefix is used without being declared."
    ),
    Code("xml.doctype", Area.XML, _E, "The document has a DOCTYPE; DTDs are refused, not ignored."),
    Code(
        "xml.external-dtd",
        Area.XML,
        _E,
        "The DOCTYPE points at an external DTD; it is never loaded.",
    ),
    Code(
        "xml.external-entity",
        Area.XML,
        _E,
        "The DOCTYPE declares an external entity; it is never resolved.",
    ),
    Code(
        "xml.entity-expansion",
        Area.XML,
        _E,
        "The DOCTYPE declares entities (an expansion bomb such as billion laughs).",
    ),
    Code("xml.too-deep", Area.XML, _E, "Elements are nested deeper than GREENLANE_XML_MAX_DEPTH."),
    Code(
        "xml.text-too-long",
        Area.XML,
        _E,
        "A text or attribute value is longer than GREENLANE_XML_MAX_TEXT_CHARS.",
    ),
    Code(
        "xml.unknown-root", Area.XML, _E, "The root element is not a document type greenlane reads."
    ),
    # --- structure: sps/structure.py (add structure.* codes below this line) ---
    # --- rule and codelist: sps/rules.py (add rule.* and codelist.* codes below this line) ---
)


def finding(code: str, message: str, path: str = "") -> Finding:
    """A finding for a registered code; its level and area come from the registry."""
    entry = CODES[code]
    return Finding(level=entry.level, area=entry.area, path=path, code=code, message=message)


ERRORS: dict[str, str] = {
    "config.invalid": "A setting has a wrong value or the settings file has an unknown key.",
    "config.file-missing": "GREENLANE_SETTINGS_FILE names a file that does not exist.",
    "config.unsafe-in-production": "The production profile refuses a development default.",
    "db.unavailable": "The database cannot be opened or reached (GREENLANE_DATABASE_URL).",
    "internal": "A bug: the command failed in a way it did not foresee (exit status 3).",
}
"""Codes of errors that stop a command (not findings about a document)."""
