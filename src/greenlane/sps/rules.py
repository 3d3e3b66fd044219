"""The business rules of an SPS certificate, beyond what its schema can say.

Run on every document received, so built for speed: a few single-tag passes in
which lxml picks out, in C, only the elements some rule reads (a Python proxy
per element is what costs; XPath and ElementPath measured slower here), then
the rules over several parts. A finding's path is an XPath with the rsm/ram/udt
prefixes and a position on every step below the root, whatever prefixes the
document itself used.

Calibrated on the real certificates of the corpus: what schema-valid real
certificates do routinely (weights without a unit, a bare country code as a
port, "NULL" as a place, re-export notes on an export certificate) is a
warning, not an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache

from lxml import etree

from greenlane.codes import finding
from greenlane.findings import Finding
from greenlane.settings import Settings
from greenlane.sps import codelists
from greenlane.sps.datetimes import MAX_OFFSET, Reading, parse_datetime, parse_element
from greenlane.sps.identity import RAM, RSM, UDT

DEFAULT_CLOCK_SKEW = timedelta(seconds=Settings.model_fields["sps_clock_skew_seconds"].default)

_PREFIXES = {RSM: "rsm", RAM: "ram", UDT: "udt"}


def _ram(name: str) -> str:
    return f"{{{RAM}}}{name}"


_DOCUMENT = f"{{{RSM}}}SPSExchangedDocument"
_CONSIGNMENT = f"{{{RSM}}}SPSConsignment"
_ID, _SUBJECT, _CONTENT = _ram("ID"), _ram("Subject"), _ram("Content")
_TYPE_CODE, _STATUS_CODE, _ISSUE = _ram("TypeCode"), _ram("StatusCode"), _ram("IssueDateTime")
_SYSTEM, _CLASS_CODE, _RELATIONSHIP = (
    _ram("SystemName"),
    _ram("ClassCode"),
    _ram("RelationshipTypeCode"),
)
_REEXPORT_COUNTRY = _ram("ReExportSPSCountry")
_LINE, _SEQUENCE = _ram("IncludedSPSTradeLineItem"), _ram("SequenceNumeric")
_CLASSIFICATION = _ram("ApplicableSPSClassification")
_REFERENCE = _ram("ReferenceSPSReferencedDocument")
_MEASURES = {
    _ram("NetWeightMeasure"): "weight",
    _ram("GrossWeightMeasure"): "weight",
    _ram("NetVolumeMeasure"): "volume",
    _ram("GrossVolumeMeasure"): "volume",
}
_COUNTRIES = frozenset(
    _ram(f"{n}SPSCountry") for n in ("Export", "ReExport", "Import", "Transit", "Origin")
)
_LOCATIONS = frozenset(
    _ram(f"{n}SPSLocation")
    for n in (
        "Issue",
        "LoadingBaseport",
        "UnloadingBaseport",
        "ConsigneeReceipt",
        "Transit",
        "Occurrence",
        "Origin",
    )
)
_NAME, _CITY = _ram("Name"), _ram("CityName")
_LINE_NAMES = frozenset((_ram("CommonName"), _ram("ScientificName")))

_PLACEHOLDERS = frozenset(
    {
        "null",
        "none",
        "nil",
        "n/a",
        "na",
        "n.a.",
        "n/d",
        "s/d",
        "sin dato",
        "sin datos",
        "sin nombre",
        "ninguno",
        "ninguna",
        "no aplica",
        "no disponible",
        "desconocido",
        "unknown",
        "not available",
        "not applicable",
        "undefined",
        "tbd",
        "xxx",
    }
)
_PLACEHOLDER_MAX = 40
_ALNUM = re.compile(r"\w")
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?", re.ASCII)
_REPLACEMENT_DETAILS = ("ADRPN", "ADRPR", "ADRD")
_ORIGINAL_TYPES = frozenset({"851", "657"})


def _strip(text: str | None) -> str:
    return (text or "").strip()


def _quote(text: str | None) -> str:
    value = " ".join((text or "").split())
    return repr(value if len(value) <= 40 else value[:39] + "…")


def _children(element: etree._Element, tag: str) -> Iterator[etree._Element]:
    """Children with this tag; a plain loop beats find() (ElementPath) on these small parents."""
    for child in element:
        if child.tag == tag:
            yield child


def _child(element: etree._Element | None, tag: str) -> etree._Element | None:
    if element is not None:
        for child in element:
            if child.tag == tag:
                return child
    return None


def _child_text(element: etree._Element | None, tag: str) -> str:
    child = _child(element, tag)
    return _strip(child.text) if child is not None else ""


def _step(tag: object) -> str:
    if not isinstance(tag, str):  # a comment or processing instruction
        return "node()"
    return _named_step(tag)


@cache
def _named_step(tag: str) -> str:
    namespace, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    prefix = _PREFIXES.get(namespace)
    return f"{prefix}:{local}" if prefix else f"*[local-name()='{local}']"


def path_of(element: etree._Element) -> str:
    """An XPath to ``element``: rsm/ram/udt prefixes, a position on each step below the root.

    libxml2 computes the positions (getpath, in C); only its prefixes, which are
    the document's own, are replaced, and steps it could not name (an element
    in a default namespace) are counted here.
    """
    chain = []
    node: etree._Element | None = element
    while node is not None:
        chain.append(node)
        node = node.getparent()
    chain.reverse()
    steps = element.getroottree().getpath(element)[1:].split("/")
    out = ["", _step(chain[0].tag)]
    for node, step in zip(chain[1:], steps[1:], strict=True):
        if not step.endswith("]"):
            position = "1"
        elif step.startswith("*"):  # libxml2 counted every sibling element, not the same name
            same = node.itersiblings(etree.QName(node).text, preceding=True)
            position = str(1 + len(list(same)))
        else:
            position = step[step.rindex("[") + 1 : -1]
        out.append(f"{_step(node.tag)}[{position}]")
    return "/".join(out)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


class _PathMaker:
    """path_of, faster for the common document: prefixes bound once, on the root.

    libxml2's getpath (in C) gives the positions with the document's prefixes;
    they are renamed when every element on the way sees the root's bindings,
    otherwise the general path_of is used. Renamings are cached: certificates
    repeat the same paths.
    """

    def __init__(self, root: etree._Element) -> None:
        self.nsmap = root.nsmap
        self.prefixes = tuple(
            sorted((p, _PREFIXES[ns]) for p, ns in self.nsmap.items() if p and ns in _PREFIXES)
        )

    def __call__(self, element: etree._Element) -> str:
        if element.nsmap == self.nsmap:
            path = _renamed(element.getroottree().getpath(element), self.prefixes)
            if path is not None:
                return path
        return path_of(element)


@lru_cache(maxsize=4096)
def _renamed(raw: str, prefixes: tuple[tuple[str, str], ...]) -> str | None:
    """A getpath result with our prefixes and a position on every step, or None if it can't be."""
    ours = dict(prefixes)
    out = [""]
    for index, step in enumerate(raw[1:].split("/")):
        prefix, colon, rest = step.partition(":")
        name = ours.get(prefix) if colon else None
        if name is None:
            return None
        out.append(f"{name}:{rest}" if not index or rest.endswith("]") else f"{name}:{rest}[1]")
    return "/".join(out)


class _Line:
    __slots__ = ("element", "has_hs", "sequence")

    def __init__(self, element: etree._Element) -> None:
        self.element = element
        self.sequence: etree._Element | None = None
        self.has_hs = False


class _Check:
    """The findings about one certificate, and what the walk gathered for the later rules."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.findings: list[Finding] = []
        self.path: _PathMaker | None = None  # made on the first finding: most elements have none
        self.notes: dict[str, list[etree._Element]] = {}
        self.rpc_notes: list[etree._Element] = []
        self.lines: list[_Line] = []

    def add(self, code: str, message: str, element: etree._Element) -> None:
        if self.path is None:
            self.path = _PathMaker(self.root)
        self.findings.append(finding(code, message, self.path(element)))

    def walk(self) -> None:
        """One pass per kind of element: lxml tests each element against every tag it is
        given, so a few single-tag passes cost less than one pass over many tags.
        A trade line's own children are read by its handler, countries and
        locations through their ID, notes through their Subject.
        """
        root = self.root
        for element in root.iter(_NAME, _CITY):
            self.placeholder(element)
        for element in root.iter(_ID):
            self.identifier(element)
        for element in root.iter(_SUBJECT):
            self.note(element)
        for element in root.iter(_LINE):
            self.line(element)

    # --- the document header -------------------------------------------------------

    def document(self, now: datetime, clock_skew: timedelta) -> str | None:
        document = _child(self.root, _DOCUMENT)
        if document is None:
            return None
        type_code = status = issue = None
        for child in document:  # the schema's order: TypeCode, StatusCode, IssueDateTime, …
            tag = child.tag
            if tag == _TYPE_CODE:
                type_code = child
            elif tag == _STATUS_CODE:
                status = child
            elif tag == _ISSUE:
                issue = child
                if type_code is not None and status is not None:
                    break  # the rest (parties, notes, signatory) is for the walk
        value = None
        if type_code is not None:
            value = _strip(type_code.text)
            if value not in codelists.document_types():
                self.add(
                    "codelist.document-type",
                    f"TypeCode {_quote(value)} is not an SPS certificate type (851, 657, 852, 853)",
                    type_code,
                )
        if status is not None and _strip(status.text) not in codelists.status_codes():
            self.add(
                "codelist.status",
                f"StatusCode {_quote(status.text)} is not 70, 40, 39 or 41",
                status,
            )
        if issue is not None:
            self.issue_date(issue, now, clock_skew)
        return value

    def issue_date(self, issue: etree._Element, now: datetime, clock_skew: timedelta) -> None:
        parsed = parse_element(issue)
        where = issue[0] if len(issue) else issue
        if parsed.value is None:
            self.add(
                "rule.issue-date-unparseable",
                f"IssueDateTime {_quote(parsed.text)} is not a date and time",
                where,
            )
            return
        allowance = clock_skew
        if parsed.reading is not Reading.ZONED:
            # Read as UTC, a local time may be up to 14 hours ahead of it without being wrong.
            allowance += MAX_OFFSET
            what = "has no time zone" if parsed.reading is Reading.NO_ZONE else "is a date only"
            self.add(
                "rule.issue-date-no-zone",
                f"IssueDateTime {_quote(parsed.text)} {what}; read as UTC",
                where,
            )
        if parsed.value > now + allowance:
            self.add(
                "rule.issue-date-future",
                f"IssueDateTime {parsed.value.isoformat()} is later than now "
                f"({now.isoformat(timespec='seconds')}) plus {int(allowance.total_seconds())} s",
                where,
            )

    # --- what the walk meets --------------------------------------------------------

    def placeholder(self, element: etree._Element) -> None:
        text = element.text
        if not text or len(text) > _PLACEHOLDER_MAX or not _is_placeholder(text):
            return
        self.add(
            "rule.placeholder",
            f"{_local(element)} {_quote(text)} is a placeholder, not a name or place",
            element,
        )

    def identifier(self, element: etree._Element) -> None:
        """Judge an ID by what it identifies: a country or a location (other IDs are free)."""
        parent = element.getparent()
        owner = parent.tag if parent is not None else None
        if owner in _COUNTRIES:
            if _strip(element.text) not in codelists.countries():
                self.add(
                    "codelist.country",
                    f"country {_quote(element.text)} is not ISO 3166-1 alpha-2",
                    element,
                )
        elif owner in _LOCATIONS:
            self.location(element)

    def location(self, element: etree._Element) -> None:
        text = _strip(element.text)
        if not text:
            return
        code = text[:2] + text[3:] if len(text) == 6 and text[2] == " " else text
        countries = codelists.countries()
        if _LOCODE.fullmatch(code) and code[:2] in countries:
            if code[:2] not in codelists.unlocode_countries() or code in codelists.unlocodes():
                return  # a country whose UN/LOCODEs are not packaged: the form is all we can check
            reason = f"is not in UN/LOCODE for {code[:2]}"
        elif code in countries:
            reason = "is a bare country code, not a UN/LOCODE"
        else:
            reason = "is not a UN/LOCODE"
        self.add("codelist.location", f"location ID {_quote(text)} {reason}", element)

    def note(self, subject_element: etree._Element) -> None:
        """Judge a note from its Subject (walking to Subjects skips every other child).

        ram:Subject exists only in SPSNoteType, so its parent is a note.
        """
        note = subject_element.getparent()
        if note is None:
            return
        subject = _strip(subject_element.text)
        spec = codelists.note_subjects().get(subject)
        if spec is None:
            other = codelists.ippc_subjects().get(subject)
            kind = f"a {other.kind} acronym, not a note subject" if other else "not an IPPC code"
            self.add("codelist.note-subject", f"note subject {_quote(subject)} is {kind}", note)
            return
        self.notes.setdefault(subject, []).append(note)
        if subject.startswith("RPC"):
            self.rpc_notes.append(note)
        if spec.max_length is None and spec.value_type == "text":
            return
        for content in _children(note, _CONTENT):
            text = _strip(content.text)
            if spec.max_length is not None and len(text) > spec.max_length:
                self.add(
                    "rule.note-too-long",
                    f"{subject} content has {len(text)} characters; at most {spec.max_length}",
                    content,
                )
            if text and not _has_type(text, spec.value_type):
                self.add(
                    "rule.note-type",
                    f"{subject} ({spec.description}) should be a {spec.value_type}, "
                    f"not {_quote(text)}",
                    content,
                )

    def line(self, element: etree._Element) -> None:
        """A trade line's own children: its number, quantities, classifications, names."""
        line = _Line(element)
        self.lines.append(line)
        for child in element:
            tag = child.tag
            if tag in _MEASURES:
                self.measure(child)
            elif tag == _CLASSIFICATION:
                line.has_hs = self.classification(child) or line.has_hs
            elif tag == _SEQUENCE:
                if line.sequence is None:
                    line.sequence = child
            elif tag in _LINE_NAMES:
                self.placeholder(child)

    def measure(self, measure: etree._Element) -> None:
        kind = _MEASURES[measure.tag]  # type: ignore[index]
        try:
            value: Decimal | None = Decimal(_strip(measure.text))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value <= 0:
            self.add(
                f"rule.{kind}-not-positive",
                f"{_local(measure)} {_quote(measure.text)} is not a positive number",
                measure,
            )
        unit = measure.get("unitCode")
        if unit is None:
            self.add(f"rule.{kind}-unit-missing", f"{_local(measure)} has no unitCode", measure)
        elif unit.strip() not in codelists.units():
            self.add(
                "codelist.unit",
                f"{_local(measure)} unitCode {_quote(unit)} is not a UN/ECE Rec 20 code",
                measure,
            )

    def classification(self, classification: etree._Element) -> bool:
        """Judge an HS classification; True when it is one with a code.

        Other systems (IPPC commodity classes, national ones) are not judged as HS.
        """
        systems, code_element = [], None
        for child in classification:
            if child.tag == _SYSTEM:
                systems.append(_strip(child.text))
            elif child.tag == _CLASS_CODE and code_element is None:
                code_element = child
        if "HS" not in systems or code_element is None:
            return False  # HS named without a code: the line counts as having no HS code
        text = _strip(code_element.text)
        code = text.replace(".", "").replace(" ", "")
        if not code:
            return False
        reason = _hs_problem(code)
        if reason:
            self.add("codelist.hs", f"HS ClassCode {_quote(text)} {reason}", code_element)
        return True

    # --- rules over several parts -----------------------------------------------

    def trade_lines(self) -> None:
        if not self.lines:
            where = _child(self.root, _CONSIGNMENT)
            self.add(
                "rule.trade-line-missing",
                "the certificate has no trade line",
                where if where is not None else self.root,
            )
            return
        count, seen = len(self.lines), set()
        for line in self.lines:
            if not line.has_hs:
                self.add(
                    "rule.hs-missing", "trade line has no HS classification code", line.element
                )
            text = line.sequence.text if line.sequence is not None else None
            number = _integer(text)
            if number is not None and 1 <= number <= count and number not in seen:
                seen.add(number)
                continue
            self.add(
                "rule.sequence",
                f"SequenceNumeric {_quote(text)} breaks the numbering 1..{count} "
                f"of the {count} trade line(s)",
                line.sequence if line.sequence is not None else line.element,
            )

    def replacement(self) -> None:
        notes = self.notes
        if "ADRP" in notes:
            if not any(_child_text(note, _CONTENT) for note in notes.get("ADRPN", ())):
                self.add(
                    "rule.replacement-incomplete",
                    "ADRP declares a replacement but no ADRPN names the certificate replaced",
                    notes["ADRP"][0],
                )
            return
        for subject in _REPLACEMENT_DETAILS:
            if subject in notes:
                self.add(
                    "rule.replacement-orphan",
                    f"{subject} describes a replacement but there is no ADRP note",
                    notes[subject][0],
                )

    def reexport(self, type_code: str | None) -> None:
        if type_code == "851" and self.rpc_notes:
            self.add(
                "rule.reexport-notes-on-export",
                f"{len(self.rpc_notes)} re-export (RPC*) note(s) on a phytosanitary "
                "certificate for export (851)",
                self.rpc_notes[0],
            )
        if type_code != "657":
            return
        consignment = _child(self.root, _CONSIGNMENT)
        if not _child_text(_child(consignment, _REEXPORT_COUNTRY), _ID):
            self.add(
                "rule.reexport-country-missing",
                "a re-export certificate (657) needs ReExportSPSCountry",
                consignment if consignment is not None else self.root,
            )
        if not self._references_original():
            document = _child(self.root, _DOCUMENT)
            self.add(
                "rule.reexport-original-missing",
                "a re-export certificate (657) must reference the original certificate "
                "(an RPCRF note, or a referenced document of type 851/657 or relationship AWR)",
                document if document is not None else self.root,
            )

    def _references_original(self) -> bool:
        if any(_child_text(note, _CONTENT) for note in self.notes.get("RPCRF", ())):
            return True
        return any(
            _child_text(reference, _ID)
            and (
                _child_text(reference, _TYPE_CODE) in _ORIGINAL_TYPES
                or _child_text(reference, _RELATIONSHIP) == "AWR"
            )
            for reference in self.root.iter(_REFERENCE)
        )


def _is_placeholder(text: str) -> bool:
    """A stand-in for a missing value: "NULL", "sin dato", "N/A", or no letter or digit at all.

    Empty text is not one: emptiness is the structure check's to judge.
    """
    folded = text.strip().casefold()
    if folded in _PLACEHOLDERS:
        return True
    if not folded:
        return False
    if " " in folded and " ".join(folded.split()) in _PLACEHOLDERS:
        return True
    return _ALNUM.search(folded) is None


def _hs_problem(code: str) -> str:
    """What is wrong with an HS code (dots and spaces removed), or "" when nothing is."""
    subheadings = codelists.hs_subheadings()
    digits = code.isascii() and code.isdigit()
    if digits and 6 <= len(code) <= 10:
        if code[:6] in subheadings:
            return ""
        reason = f"has no HS 2022 subheading {code[:6]}"
    elif digits and len(code) == 4 and code in codelists.hs_headings():
        reason = "is an HS heading; the 6-digit subheading is needed"
    else:
        reason = "is not an HS code of 6 to 10 digits"
    if digits and len(code) in (5, 7, 9) and ("0" + code)[:6] in subheadings:
        reason += "; a leading zero may be missing"
    return reason


def _integer(text: str | None) -> int | None:
    try:
        value = Decimal(_strip(text))
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value():
        return None
    return int(value)


def _has_type(text: str, value_type: str | None) -> bool:
    if value_type == "date":
        return parse_datetime(text).value is not None
    if value_type == "number":
        return _NUMBER.fullmatch(text) is not None
    return True


def check_rules(
    root: etree._Element,
    *,
    now: datetime | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[Finding]:
    """The rule and code-list findings about one SPSCertificate tree.

    ``now`` must be aware (it defaults to the current time); an IssueDateTime
    later than ``now + clock_skew`` is an error.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    check = _Check(root)
    type_code = check.document(now, clock_skew)
    check.walk()
    check.trade_lines()
    check.replacement()
    check.reexport(type_code)
    return check.findings
