"""The business rules of an SPS certificate, beyond what its schema can say.

Run on every document received, so built for speed: a few passes in which
lxml picks out, in C, only the elements some rule starts from, then the rules
over several parts. What costs is Python's work per element: a proxy, each
``.tag`` (a new string every time), each call. So each pass asks lxml for one
kind of element and never reads its tag, a note's parent is fetched only when
a rule needs it, and findings' paths are made only for the elements that have
one (XPath, ElementPath and getpath all measured slower). A finding's path is
an XPath with the rsm/ram/udt prefixes and a position on every step below the
root, whatever prefixes the document itself used.

Calibrated on the real certificates of the corpus: what schema-valid real
certificates do routinely (weights without a unit, a bare country code as a
port, "NULL" as a place, re-export notes on an export certificate) is a
warning, not an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache

from lxml import etree

from greenlane.codes import finding
from greenlane.findings import Finding
from greenlane.settings import Settings
from greenlane.sps import codelists
from greenlane.sps.codelists import SubjectSpec
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
_MEASURES = {  # tag -> (kind, local name)
    _ram(name): (kind, name)
    for name, kind in (
        ("NetWeightMeasure", "weight"),
        ("GrossWeightMeasure", "weight"),
        ("NetVolumeMeasure", "volume"),
        ("GrossVolumeMeasure", "volume"),
    )
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
_NAMED = {_ram(name): name for name in ("Name", "CityName", "CommonName", "ScientificName")}
_LINE_CHILDREN = (*_MEASURES, _CLASSIFICATION, _SEQUENCE, *_LINE_NAMES)

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
    return text.strip() if text else ""


def _quote(text: str | None) -> str:
    value = " ".join((text or "").split())
    return repr(value if len(value) <= 40 else value[:39] + "…")


def _child(element: etree._Element | None, tag: str) -> etree._Element | None:
    """The first child with this tag; a plain loop beats find() (ElementPath) on small parents."""
    if element is not None:
        for child in element:
            if child.tag == tag:
                return child
    return None


def _child_text(element: etree._Element | None, tag: str) -> str:
    child = _child(element, tag)
    return _strip(child.text) if child is not None else ""


@cache
def _step(tag: str) -> str:
    """A tag as an XPath step without a position: ram:Name, or a local-name() test."""
    namespace, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    prefix = _PREFIXES.get(namespace)
    return f"{prefix}:{local}" if prefix else f"*[local-name()='{local}']"


_ELEMENT_PATH_STEP = re.compile(r"((?:\{[^}]*\})?[^/\[{]+)(\[\d+\])?(?:/|$)")
_BELOW_ROOT: dict[str, str] = {}
_CACHE_MAX = 4096


def _below_root(element_path: str) -> str:
    """An ElementPath from the root (lxml's getelementpath) as our XPath steps below the root.

    Made once per distinct path, as certificates repeat the same ones; the cache
    is emptied when full, so documents with ever new paths cannot grow it.
    """
    steps = _BELOW_ROOT.get(element_path)
    if steps is None:
        steps = "".join(
            f"/{_step(match[1])}{match[2] or '[1]'}"
            for match in _ELEMENT_PATH_STEP.finditer(element_path)
        )
        if len(_BELOW_ROOT) >= _CACHE_MAX:
            _BELOW_ROOT.clear()
        _BELOW_ROOT[element_path] = steps
    return steps


def path_of(element: etree._Element) -> str:
    """An XPath to ``element``: rsm/ram/udt prefixes, a position on each step below the root.

    lxml's getelementpath names each step by its namespace and counts, in C, the
    preceding siblings with the same tag; only the renaming is done here.
    """
    tree = element.getroottree()
    root = tree.getroot()
    top = "/" + _step(root.tag)  # type: ignore[arg-type]
    return top if element is root else top + _below_root(tree.getelementpath(element))


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
        tree = root.getroottree()
        self.element_path = tree.getelementpath
        self.top = tree.getroot()
        self.top_path = "/" + _step(self.top.tag)  # type: ignore[arg-type]
        self.subjects: dict[str, list[etree._Element]] = {}
        """The Subject elements of the _TRACKED subjects; a note is its Subject's parent."""
        self.rpc_subjects: list[etree._Element] = []
        self.lines: list[_Line] = []

    def add(self, code: str, message: str, element: etree._Element) -> None:
        """A finding about ``element``, its path made as path_of makes it."""
        if element is self.top:
            path = self.top_path
        else:
            raw = self.element_path(element)
            steps = _BELOW_ROOT.get(raw)
            path = self.top_path + (steps if steps is not None else _below_root(raw))
        self.findings.append(finding(code, message, path))

    def walk(self) -> None:
        """One pass per kind of element, so that lxml, not Python, tells the kinds apart.

        A trade line's own children are read by its handler, countries and
        locations through their ID, notes through their Subject.
        """
        root = self.root
        verdicts = _PLACEHOLDER_VERDICTS
        for element in root.iter(_NAME, _CITY):
            text = element.text
            if text and len(text) <= _PLACEHOLDER_MAX:
                verdict = verdicts.get(text)
                if verdict is None:
                    verdict = _judge_placeholder(text)
                if verdict:
                    self.placeholder(element, text)
        countries = codelists.countries()
        for element in root.iter(_ID):
            parent = element.getparent()
            if parent is None:
                continue
            owner = parent.tag
            if owner in _COUNTRIES:
                text = element.text
                if (text.strip() if text else "") not in countries:
                    self.add(
                        "codelist.country",
                        f"country {_quote(text)} is not ISO 3166-1 alpha-2",
                        element,
                    )
            elif owner in _LOCATIONS:
                self.location(element)
        specs = codelists.note_subjects()
        further = _read_further(specs)
        alone = root if root.getparent() is None else None  # a Subject alone is no note
        for element in root.iter(_SUBJECT):
            text = element.text
            subject = text.strip() if text else ""
            if further.get(subject) is False or element is alone:
                continue  # most notes: a known subject, and no rule reads more of them
            self.note(element, subject, specs)
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

    def placeholder(self, element: etree._Element, text: str) -> None:
        self.add(
            "rule.placeholder",
            f"{_NAMED[element.tag]} {_quote(text)} is a placeholder, not a name or place",  # type: ignore[index]
            element,
        )

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

    def note(
        self, subject_element: etree._Element, subject: str, specs: Mapping[str, SubjectSpec]
    ) -> None:
        """Judge a note from its Subject (walking to Subjects skips every other child).

        ram:Subject exists only in SPSNoteType, so its parent is a note; it is
        fetched only for the notes a rule reads further.
        """
        spec = specs.get(subject)
        if spec is None:
            other = codelists.ippc_subjects().get(subject)
            kind = f"a {other.kind} acronym, not a note subject" if other else "not an IPPC code"
            self.add(
                "codelist.note-subject",
                f"note subject {_quote(subject)} is {kind}",
                _note(subject_element),
            )
            return
        if subject in _TRACKED:
            self.subjects.setdefault(subject, []).append(subject_element)
        if subject.startswith("RPC"):
            self.rpc_subjects.append(subject_element)
        if spec.max_length is None and spec.value_type == "text":
            return
        for content in _note(subject_element):
            if content.tag != _CONTENT:
                continue
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
        """A trade line's own children: its number, quantities, classifications, names.

        lxml picks them out, skipping the line's notes, packages, comments and the like.
        """
        line = _Line(element)
        self.lines.append(line)
        for child in element.iterchildren(*_LINE_CHILDREN):
            tag = child.tag
            measure = _MEASURES.get(tag)  # type: ignore[arg-type]
            if measure is not None:
                self.measure(child, *measure)
            elif tag == _CLASSIFICATION:
                line.has_hs = self.classification(child) or line.has_hs
            elif tag == _SEQUENCE:
                if line.sequence is None:
                    line.sequence = child
            else:  # a common or scientific name
                text = child.text
                if text and len(text) <= _PLACEHOLDER_MAX and _is_placeholder(text):
                    self.placeholder(child, text)

    def measure(self, measure: etree._Element, kind: str, name: str) -> None:
        text = measure.text
        try:
            value: Decimal | None = Decimal(text.strip() if text else "")
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value <= 0:
            self.add(
                f"rule.{kind}-not-positive",
                f"{name} {_quote(text)} is not a positive number",
                measure,
            )
        unit = measure.get("unitCode")
        if unit is None:
            self.add(f"rule.{kind}-unit-missing", f"{name} has no unitCode", measure)
        elif unit.strip() not in codelists.units():
            self.add(
                "codelist.unit",
                f"{name} unitCode {_quote(unit)} is not a UN/ECE Rec 20 code",
                measure,
            )

    def classification(self, classification: etree._Element) -> bool:
        """Judge an HS classification; True when it is one with a code.

        Other systems (IPPC commodity classes, national ones) are not judged as HS.
        """
        systems, code_element = [], None
        for child in classification:
            tag = child.tag
            if tag == _SYSTEM:
                systems.append(_strip(child.text))
            elif tag == _CLASS_CODE and code_element is None:
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
        subjects = self.subjects
        if "ADRP" in subjects:
            if not any(_child_text(_note(s), _CONTENT) for s in subjects.get("ADRPN", ())):
                self.add(
                    "rule.replacement-incomplete",
                    "ADRP declares a replacement but no ADRPN names the certificate replaced",
                    _note(subjects["ADRP"][0]),
                )
            return
        for subject in _REPLACEMENT_DETAILS:
            if subject in subjects:
                self.add(
                    "rule.replacement-orphan",
                    f"{subject} describes a replacement but there is no ADRP note",
                    _note(subjects[subject][0]),
                )

    def reexport(self, type_code: str | None) -> None:
        if type_code == "851" and self.rpc_subjects:
            self.add(
                "rule.reexport-notes-on-export",
                f"{len(self.rpc_subjects)} re-export (RPC*) note(s) on a phytosanitary "
                "certificate for export (851)",
                _note(self.rpc_subjects[0]),
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
        if any(_child_text(_note(s), _CONTENT) for s in self.subjects.get("RPCRF", ())):
            return True
        return any(
            _child_text(reference, _ID)
            and (
                _child_text(reference, _TYPE_CODE) in _ORIGINAL_TYPES
                or _child_text(reference, _RELATIONSHIP) == "AWR"
            )
            for reference in self.root.iter(_REFERENCE)
        )


_TRACKED = frozenset({"ADRP", *_REPLACEMENT_DETAILS, "RPCRF"})
"""The note subjects the rules over several parts look for."""
_FURTHER: tuple[Mapping[str, SubjectSpec], dict[str, bool]] = ({}, {})


def _read_further(specs: Mapping[str, SubjectSpec]) -> dict[str, bool]:
    """Note subject -> whether any rule reads more than that it is a note subject.

    False for most: a text without a length limit, in no rule over several parts.
    Made again only when the code list is another object (tests replace it).
    """
    global _FURTHER
    if _FURTHER[0] is not specs:
        further = {
            code: code in _TRACKED
            or code.startswith("RPC")
            or spec.max_length is not None
            or spec.value_type != "text"
            for code, spec in specs.items()
        }
        _FURTHER = (specs, further)
    return _FURTHER[1]


def _note(subject: etree._Element) -> etree._Element:
    """The note a walked Subject belongs to (the walk skips a Subject without a parent)."""
    note = subject.getparent()
    assert note is not None
    return note


_PLACEHOLDER_VERDICTS: dict[str, bool] = {}
"""_is_placeholder's answers by text: the same names and places recur across certificates."""


def _is_placeholder(text: str) -> bool:
    verdict = _PLACEHOLDER_VERDICTS.get(text)
    return _judge_placeholder(text) if verdict is None else verdict


def _judge_placeholder(text: str) -> bool:
    """A stand-in for a missing value: "NULL", "sin dato", "N/A", or no letter or digit at all.

    Empty text is not one: emptiness is the structure check's to judge. The
    answer is remembered (the cache is emptied when full).
    """
    folded = text.strip().casefold()
    if folded in _PLACEHOLDERS:
        verdict = True
    elif not folded:
        verdict = False
    elif " " in folded and " ".join(folded.split()) in _PLACEHOLDERS:
        verdict = True
    else:  # \w is a letter, a digit or "_": the first character mostly settles it
        verdict = not folded[0].isalnum() and _ALNUM.search(folded) is None
    if len(_PLACEHOLDER_VERDICTS) >= _CACHE_MAX:
        _PLACEHOLDER_VERDICTS.clear()
    _PLACEHOLDER_VERDICTS[text] = verdict
    return verdict


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
