"""Findings: what any check says about a document, in one shape everywhere.

A finding is ``{level, area, path, code, message}``. ``code`` is stable and listed
with its level and area in :mod:`greenlane.codes` (and so in ``docs/codes.md``);
``path`` is an XPath (or JSON pointer) into the document, empty when the finding
is about the input as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Area(StrEnum):
    XML = "xml"
    STRUCTURE = "structure"
    SCHEMA = "schema"
    RULE = "rule"
    CODELIST = "codelist"
    SIGNATURE = "signature"
    POLICY = "policy"


class Finding(NamedTuple):
    """One finding. A named tuple: findings are made by the thousand per second, and a
    tuple is built in one C call where a frozen dataclass sets each field in Python."""

    level: Level
    area: Area
    path: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "level": self.level.value,
            "area": self.area.value,
            "path": self.path,
            "code": self.code,
            "message": self.message,
        }


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when any finding is error-level: the verdict every command's exit status follows."""
    return any(f.level is Level.ERROR for f in findings)
