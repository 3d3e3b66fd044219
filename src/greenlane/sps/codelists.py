"""The packaged code lists (src/greenlane/data), each read once on first use.

The files are built by ``tools/build_codelists.py``; their sources and licences
are in ``data/ATTRIBUTION.md``. Everything here is read-only and cached, so the
rules can ask for a list per document at no cost.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Literal

SubjectKind = Literal["note", "treatment", "classification"]
ValueType = Literal["text", "date", "number"]
Level = Literal["document", "line"]


@dataclass(frozen=True, slots=True)
class SubjectSpec:
    """One IPPC tag acronym and what its code list says (and implies) about it.

    ``max_length`` is None when the list gives no limit, which today is always.
    ``value_type`` is read from the description's wording (a date, a quantity
    value) and is None for treatment and classification acronyms.
    """

    code: str
    kind: SubjectKind
    level: Level | None
    value_type: ValueType | None
    max_length: int | None
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Location:
    code: str
    name: str
    subdivision: str
    function: str


def _text(name: str) -> str:
    return resources.files("greenlane.data").joinpath(name).read_text(encoding="utf-8")


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(name))))


def _code_names(name: str) -> Mapping[str, str]:
    return MappingProxyType({row["code"]: row["name"] for row in _rows(name)})


@cache
def countries() -> Mapping[str, str]:
    """ISO 3166-1 alpha-2 code → English name."""
    return _code_names("countries.csv")


@cache
def _hs_codes() -> tuple[str, ...]:
    return tuple(_text("hs2022.txt").split())


@cache
def hs_subheadings() -> frozenset[str]:
    """HS 2022 six-digit subheadings."""
    return frozenset(code for code in _hs_codes() if len(code) == 6)


@cache
def hs_headings() -> frozenset[str]:
    """HS 2022 four-digit headings."""
    return frozenset(code for code in _hs_codes() if len(code) == 4)


@cache
def hs_chapters() -> frozenset[str]:
    """HS 2022 two-digit chapters."""
    return frozenset(code for code in _hs_codes() if len(code) == 2)


@cache
def unlocodes() -> Mapping[str, Location]:
    """UN/LOCODE (five characters, no space) → entry, for the corridor's countries only."""
    return MappingProxyType(
        {
            row["code"]: Location(row["code"], row["name"], row["subdivision"], row["function"])
            for row in _rows("unlocodes.csv")
        }
    )


@cache
def unlocode_countries() -> frozenset[str]:
    """The countries whose UN/LOCODEs are packaged: a code of another country can't be looked up."""
    return frozenset(code[:2] for code in unlocodes())


@cache
def unit_categories() -> Mapping[str, str]:
    """UN/ECE Rec 20 code → category (weight, volume, …) as grouped by the SPS schema."""
    return MappingProxyType({row["code"]: row["category"] for row in _rows("units.csv")})


@cache
def units() -> frozenset[str]:
    """UN/ECE Rec 20 codes that the SPS schema's code lists carry."""
    return frozenset(unit_categories())


_KINDS: dict[str, SubjectKind] = {
    "note": "note",
    "treatment": "treatment",
    "classification": "classification",
}
_LEVELS: dict[str, Level | None] = {"document": "document", "line": "line", "": None}
_TYPES: dict[str, ValueType | None] = {"text": "text", "date": "date", "number": "number", "": None}


def _spec(row: dict[str, str]) -> SubjectSpec:
    return SubjectSpec(
        code=row["code"],
        kind=_KINDS[row["kind"]],
        level=_LEVELS[row["level"]],
        value_type=_TYPES[row["value_type"]],
        max_length=int(row["max_length"]) if row["max_length"] else None,
        name=row["name"],
        description=row["description"],
    )


@cache
def ippc_subjects() -> Mapping[str, SubjectSpec]:
    """Every IPPC tag acronym (note subjects, treatment characteristics, classifications)."""
    return MappingProxyType({row["code"]: _spec(row) for row in _rows("ippc_subjects.csv")})


@cache
def note_subjects() -> Mapping[str, SubjectSpec]:
    """The acronyms that may stand in a note's Subject."""
    return MappingProxyType({c: s for c, s in ippc_subjects().items() if s.kind == "note"})


@cache
def document_types() -> Mapping[str, str]:
    """UNCL 1001 code → name, for the four SPS certificate kinds."""
    return _code_names("document_types.csv")


@cache
def status_codes() -> Mapping[str, str]:
    """UNCL 4405 code → name, for the statuses an SPS certificate may have."""
    return _code_names("status_codes.csv")
