"""Build the packaged code lists in src/greenlane/data/ from the shared corpus.

Run from the repository root: ``.venv/bin/python tools/build_codelists.py``
(``--corpus`` and ``--out`` override the defaults). The output is deterministic:
sorted rows, ``\\n`` line ends, UTF-8, no timestamps, so a rebuild can be compared
byte for byte with what is committed (tests/sps/test_codelists_build.py does).

The product never reads the corpus itself; it reads only what this script writes.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_OUT = REPO / "src" / "greenlane" / "data"

XSD = "http://www.w3.org/2001/XMLSchema"
CCTS = "urn:un:unece:uncefact:documentation:standard:CoreComponentsTechnicalSpecification:2"
CODELISTS = Path("schemas/sps/codelist/standard")

UNIT_FILES = {
    "duration": "UNECE_MeasurementUnitCommonCodeDuration_4.xsd",
    "linear": "UNECE_MeasurementUnitCommonCodeLinear_4.xsd",
    "temperature": "UNECE_MeasurementUnitCommonCodeTemperature_4.xsd",
    "volume": "UNECE_MeasurementUnitCommonCodeVolume_4.xsd",
    "weight": "UNECE_MeasurementUnitCommonCodeWeight_4.xsd",
    "airflow": "UNECE_MeasurementUnitCommonCode_Airflow_4.xsd",
    "file-size": "UNECE_MeasurementUnitCommonCode_FileSize_4.xsd",
}
DOCUMENT_TYPES = ("851", "657", "852", "853")  # UNCL 1001: the SPS certificate kinds
STATUS_CODES = ("70", "40", "39", "41")  # UNCL 4405: issued, withdrawn, approved, rejected
UNLOCODE_COUNTRIES = ("AM", "AZ", "BY", "CN", "GE", "IR", "KZ", "RU", "TR", "UZ")

# The tag acronym XSD gives each code only a ccts:Name (its group) and a
# ccts:Description; it states no length limit and no value type. The kind and
# level below are read from that wording; the value type only where the
# description itself names a date or a quantity value.
_LEVEL_WORDS = (("trade line item level", "line"), ("document level", "document"))
_TYPE_WORDS = (
    (re.compile(r"\bdate\b", re.IGNORECASE), "date"),
    (re.compile(r"quantity value", re.IGNORECASE), "number"),
)


def _parse_xml(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(path), parser).getroot()


def _enumerations(path: Path) -> list[tuple[str, str, str]]:
    """(value, ccts:Name, ccts:Description) of every enumeration in a code-list XSD."""
    rows = []
    for item in _parse_xml(path).iter(f"{{{XSD}}}enumeration"):
        name = item.findtext(f".//{{{CCTS}}}Name") or ""
        description = item.findtext(f".//{{{CCTS}}}Description") or ""
        rows.append((item.get("value", ""), _one_line(name), _one_line(description)))
    return rows


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def countries(corpus: Path) -> bytes:
    rows = _read_csv(corpus / "datasets" / "country-codes.csv")
    table = {r["ISO3166-1-Alpha-2"].strip(): r["official_name_en"].strip() for r in rows}
    if any(not re.fullmatch(r"[A-Z]{2}", code) for code in table):
        raise SystemExit("country-codes.csv: an alpha-2 code is not two capital letters")
    return _csv(("code", "name"), sorted(table.items()))


def harmonized_system(corpus: Path) -> bytes:
    """Chapters, headings and subheadings of HS 2022 (codes only: 2, 4 and 6 digits).

    UN Comtrade adds 99/9999/999999 "commodities not specified according to
    kind" (section TOTAL); the HS itself leaves chapters 98 and 99 to national
    use, so they are left out: 999999 on a certificate classifies nothing.
    """
    rows = _read_csv(corpus / "datasets" / "harmonized-system.csv")
    codes = sorted(
        {
            r["hscode"]
            for r in rows
            if r["section"] != "TOTAL" and r["hscode"].isdigit() and len(r["hscode"]) in (2, 4, 6)
        }
    )
    return "".join(f"{code}\n" for code in codes).encode("ascii")


def _unlocode_row(row: list[str]) -> tuple[str, str, str, str]:
    """(code, name, subdivision, function) from one row of a geoapify country file.

    A few rows in the source have a name with a comma that was quoted twice, so
    the name is split over two columns (and repeated without diacritics) and the
    status and IATA columns are missing; they are mended here.
    """
    if row[2].startswith('"'):
        name, plain = _join_name(row[2:4]), _join_name(row[4:6])
        subdivision, function = row[6], row[7]
    else:
        name, plain = _join_name(row[2:3]), _join_name(row[3:4])
        subdivision, function = row[4], row[6]
    if "\ufffd" in name:  # a character lost in the source: the plain spelling is whole
        name = plain
    return row[0] + row[1], name, subdivision.strip(), function.strip()


def _join_name(parts: Sequence[str]) -> str:
    cleaned = [p.strip().strip('"').strip() for p in parts]
    return ", ".join(p for p in cleaned if p)


def unlocodes(corpus: Path) -> bytes:
    entries: dict[str, tuple[str, str, str, str]] = {}
    for country in UNLOCODE_COUNTRIES:
        path = corpus / "datasets" / "unlocode" / f"{country}.csv"
        with path.open(encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            next(reader)
            for row in reader:
                entry = _unlocode_row(row)
                if not re.fullmatch(r"[A-Z]{2}[A-Z2-9]{3}", entry[0]):
                    raise SystemExit(f"{path.name}: not a UN/LOCODE: {entry[0]!r}")
                entries.setdefault(entry[0], entry)  # a repeated code keeps its first name
    return _csv(("code", "name", "subdivision", "function"), sorted(entries.values()))


# The schema set carries only subsets of UN/ECE Recommendation 20 (two mass codes,
# four volume codes). These are further Rec 20 common codes for mass and volume that
# certificates use (the decitonne, "centner", is usual in EAEU documents), so that a
# valid unit is not judged an error for missing from a subset list.
REC20_MASS_AND_VOLUME = (
    ("CLT", "volume", "centilitre"),
    ("DLT", "volume", "decilitre"),
    ("DMQ", "volume", "cubic decimetre"),
    ("DTN", "weight", "decitonne"),
    ("GLI", "volume", "gallon (UK)"),
    ("GLL", "volume", "gallon (US)"),
    ("GRM", "weight", "gram"),
    ("HGM", "weight", "hectogram"),
    ("HLT", "volume", "hectolitre"),
    ("KTN", "weight", "kilotonne"),
    ("LBR", "weight", "pound"),
    ("LTN", "weight", "ton (UK) or long ton (US)"),
    ("LTR", "volume", "litre"),
    ("MGM", "weight", "milligram"),
    ("MLT", "volume", "millilitre"),
    ("ONZ", "weight", "ounce (avoirdupois)"),
    ("STN", "weight", "ton (US) or short ton (UK/US)"),
)


def units(corpus: Path) -> bytes:
    rows = []
    for category, filename in UNIT_FILES.items():
        for code, name, _description in _enumerations(corpus / CODELISTS / filename):
            rows.append((code, category, name))
    known = {row[0] for row in rows}
    rows.extend(row for row in REC20_MASS_AND_VOLUME if row[0] not in known)
    return _csv(("code", "category", "name"), sorted(rows))


def _subject_kind(name: str) -> str:
    if name == "Treatment Information":
        return "treatment"
    if name == "Product Description":
        return "classification"
    return "note"


def _subject_level(name: str, description: str) -> str:
    words = f"{name} {description}".lower()
    for phrase, level in _LEVEL_WORDS:
        if phrase in words:
            return level
    return ""


def _subject_type(kind: str, description: str) -> str:
    if kind != "note":
        return ""
    for pattern, value_type in _TYPE_WORDS:
        if pattern.search(description):
            return value_type
    return "text"


def ippc_subjects(corpus: Path) -> bytes:
    rows = []
    path = corpus / CODELISTS / "INTERCOM_ePhyto_TagAcronymCodes.xsd"
    for code, name, description in _enumerations(path):
        kind = _subject_kind(name)
        level = _subject_level(name, description)
        value_type = _subject_type(kind, description)
        # max_length stays empty: the XSD documentation gives no length for any code.
        rows.append((code, kind, level, value_type, "", name, description))
    header = ("code", "kind", "level", "value_type", "max_length", "name", "description")
    return _csv(header, sorted(rows))


def _selected(path: Path, wanted: Sequence[str]) -> bytes:
    found: dict[str, str] = {}
    for code, name, _description in _enumerations(path):
        if code in wanted:
            # UNCL 4405 lists some values twice (the document status first, then a
            # UN/Rec 24 transport status with the same number): the first is meant.
            found.setdefault(code, name)
    missing = [code for code in wanted if code not in found]
    if missing:
        raise SystemExit(f"{path.name}: missing codes {missing}")
    return _csv(("code", "name"), [(code, found[code]) for code in wanted])


def document_types(corpus: Path) -> bytes:
    return _selected(corpus / CODELISTS / "UNECE_DocumentNameCode_D16B.xsd", DOCUMENT_TYPES)


def status_codes(corpus: Path) -> bytes:
    return _selected(corpus / CODELISTS / "UNECE_StatusCode_D16B.xsd", STATUS_CODES)


OUTPUTS = {
    "countries.csv": countries,
    "hs2022.txt": harmonized_system,
    "unlocodes.csv": unlocodes,
    "units.csv": units,
    "ippc_subjects.csv": ippc_subjects,
    "document_types.csv": document_types,
    "status_codes.csv": status_codes,
}
"""Every file this script writes, by name; nothing else in the data folder is generated."""


def build(corpus: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, make in OUTPUTS.items():
        target = out / filename
        target.write_bytes(make(corpus))
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in build(args.corpus, args.out):
        print(f"{path.stat().st_size:>8}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
