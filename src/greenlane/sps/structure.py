"""Structural validation of an SPS certificate, driven only by the generated tables.

Agrees with the official XSD (as libxml2 runs it) on whether a certificate is
valid, without loading any schema: content models, cardinalities, order,
attributes and every simple value. The types are compiled once at import
(:mod:`greenlane.sps.contentmodel`); a certificate is then walked once, in
document order.

Findings are in area ``structure`` and point at the offending element with an
XPath in the standard prefixes (``PATH_NAMESPACES``) and with a positional
predicate wherever an element may repeat.
"""

from __future__ import annotations

from lxml import etree

from greenlane.codes import finding
from greenlane.findings import Finding
from greenlane.sps import tables
from greenlane.sps.contentmodel import (
    GLOBALS,
    IGNORE,
    LAX,
    ROOT_TYPE,
    SKIP,
    TYPES,
    CType,
    Nfa,
    Row,
    Step,
    admits,
    info,
    nfa_row,
)
from greenlane.sps.lexical import collapse, normalize
from greenlane.sps.tabletypes import Particle, Wildcard

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE = f"{{{XSI}}}type"
_XSI_NIL = f"{{{XSI}}}nil"
_XSI_IGNORED = frozenset({f"{{{XSI}}}schemaLocation", f"{{{XSI}}}noNamespaceSchemaLocation"})
_WS = " \t\n\r"
_BLANK: frozenset[str | None] = frozenset(
    {None} | {lead + c * n for lead in ("", "\n", "\r\n", "\n\n") for c in " \t" for n in range(41)}
)
"""Texts that are surely whitespace (no text, and the usual indentations): one set lookup.

Any other text gets the full check, so this is only a shortcut for the common case.
"""

PATH_NAMESPACES: dict[str, str] = dict(tables.NAMESPACES)
"""The prefixes used in finding paths; pass them to XPath to evaluate a path."""
_PREFIX_OF = {uri: prefix for prefix, uri in tables.NAMESPACES.items()}


def check_structure(root: etree._Element) -> list[Finding]:
    """Every structural finding about a certificate (empty when the XSD would accept it)."""
    walk = _Walk()
    if root.tag != tables.ROOT.tag:
        walk.report(
            "structure.unexpected",
            f"the root is {_qname(_tag(root))}, not {_qname(tables.ROOT.tag)}",
            root,
        )
    else:
        try:
            walk.run(root, careful=False)
        except _NotAnElement:
            walk = _Walk()
            walk.run(root, careful=True)
    return walk.findings


class _NotAnElement(Exception):
    """A comment, processing instruction or entity: the walk starts over, carefully."""


class _Walk:
    """One pass in document order with an explicit stack of open elements.

    ``root.iter()`` runs in C and each element finds its frame through
    ``getparent()``: no per-parent child iterators and no recursion, which is
    where a naive walk spends its time. A frame is the open element and the row
    its content has reached; leaves with simple content get no frame.
    """

    __slots__ = ("findings", "ids", "misc_text", "paths", "text_reported")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.ids: set[str] = set()
        self.text_reported: set[etree._Element] = set()
        self.paths: dict[etree._Element, tuple[str, CType | None]] = {}
        self.misc_text: set[etree._Element] = set()
        """The elements with text after a comment or processing instruction among their children."""

    def report(self, code: str, message: str, el: etree._Element) -> None:
        self.findings.append(finding(code, message, element_path(el, self.paths)))

    def run(self, root: etree._Element, careful: bool) -> None:
        """The hot loop: every valid element costs a few bytecodes and no call of ours.

        A valid child is one subscript of the row (a dict), which also gives
        its mode, type and datum; everything else (diagnoses, nested models,
        wildcards, attributes, text where there should be none) is a method
        off this path. The branches are inlined and ordered by how often they
        are taken, hence the modes as literals and some repetition.

        Comments and processing instructions are rare, but where there are any
        text must be looked at more closely, and knowing costs a pass. So the
        walk first assumes there are none, visiting every node: the first that
        is not an element raises :class:`_NotAnElement`, and a ``careful`` walk
        starts over, looking first and then visiting only the elements.
        """
        misc_text = self.misc_text
        if careful:
            misc = root.iter(etree.Comment, etree.ProcessingInstruction)
            has_misc = next(misc, None) is not None
            if has_misc:
                self.misc_text = misc_text = _misc_text(root)
            elements = root.iter(etree.Element)
        else:
            has_misc = False
            elements = root.iter()
        items = root.items()
        if items or ROOT_TYPE.required_attrs:
            self.attributes(root, ROOT_TYPE, items)
        self.opened(root, ROOT_TYPE)
        blank = _BLANK
        stack: list[tuple[etree._Element, Row]] = []
        push = stack.append
        pop = stack.pop
        cur_el, row = root, ROOT_TYPE.start
        assert row is not None
        # A leaf gets no frame; should an element turn out to be its child, the
        # leaf is the previous element in document order: ``leaf`` remembers it,
        # and ``mode``, ``ct`` and ``datum`` are still the leaf's.
        leaf: etree._Element | None = None
        mode, ct, datum = 0, ROOT_TYPE, None
        next(elements)
        for e in elements:
            parent = e.getparent()
            if parent is not cur_el:
                if parent is leaf and leaf is not None:
                    push((cur_el, row))
                    cur_el, row = leaf, self.inside_leaf(leaf, mode, ct, datum)
                else:
                    while True:
                        if not row[None].final:
                            self.close(cur_el, row)
                        cur_el, row = pop()
                        if parent is cur_el:
                            break
            if e.tail not in blank:
                self.tail(cur_el, row, e)
            try:
                row, mode, ct, datum = row[e.tag]  # type: ignore[index]
            except KeyError:
                row, mode, ct, datum = self.unlisted(cur_el, row, e)
            if mode == 0:  # COMPLEX: a frame, whose row is the datum
                if e.items():
                    self.attributes(e, ct, e.items())
                push((cur_el, row))
                cur_el, row = e, datum
                if e.text not in blank or (has_misc and e in misc_text):
                    self.opened(e, ct)
            elif mode == 1:  # LEAF: any text will do
                if e.items():
                    self.attributes(e, ct, e.items())
                leaf = e
                if has_misc and len(e):
                    push((cur_el, row))
                    cur_el, row = e, self.inside_leaf(e, mode, ct, datum)
            elif mode == 2:  # CODE: one of a code list, the datum
                if e.items():
                    self.attributes(e, ct, e.items())
                leaf = e
                if has_misc and len(e):
                    push((cur_el, row))
                    cur_el, row = e, self.inside_leaf(e, mode, ct, datum)
                elif e.text not in datum:
                    self.value(e, ct)
            elif mode == 3:  # PATTERN: the datum matches a valid value
                if e.items():
                    self.attributes(e, ct, e.items())
                leaf = e
                if has_misc and len(e):
                    push((cur_el, row))
                    cur_el, row = e, self.inside_leaf(e, mode, ct, datum)
                elif datum(e.text or "") is None:
                    self.value(e, ct)
            elif mode == 4:  # VALUE: a typed value, the datum its checker
                if e.items():
                    self.attributes(e, ct, e.items())
                leaf = e
                if has_misc and len(e):
                    push((cur_el, row))
                    cur_el, row = e, self.inside_leaf(e, mode, ct, datum)
                else:
                    value = e.text or ""
                    problem = datum(value)
                    if problem is not None:
                        self.bad_value(e, value, problem)
            elif mode == 5:  # SKIP: not validated, or lax
                leaf = e
            elif ct.start is not None:  # GENERAL, element content
                self.attributes(e, ct, e.items())
                push((cur_el, row))
                cur_el, row = e, datum
                if e.text not in blank or (has_misc and e in misc_text):
                    self.opened(e, ct)
            else:  # GENERAL, simple content
                self.attributes(e, ct, e.items())
                leaf = e
                if has_misc and len(e):
                    push((cur_el, row))
                    cur_el, row = e, self.inside_leaf(e, mode, ct, datum)
                elif datum is not None:
                    self.value(e, ct)
        while True:
            if not row[None].final:
                self.close(cur_el, row)
            if not stack:
                break
            cur_el, row = pop()

    def unlisted(self, parent: etree._Element, row: Row, e: etree._Element) -> Step:
        """A child its parent's row has no step for: a nested model, a wildcard, or an error."""
        if not isinstance(e.tag, str):
            raise _NotAnElement
        t = info(row).owner
        if t.nfa is not None:
            states, ct = self.step(t, info(row).states, e)
            return nfa_row(t, states), ct.mode, ct, ct.datum
        if t is LAX:
            ct = self.admitted(e, "lax")
            return row, ct.mode, ct, ct.datum
        if t is IGNORE:
            return row, SKIP, IGNORE, IGNORE.datum
        after, ct = self.diagnose(parent, e, t, row)
        return after, ct.mode, ct, ct.datum

    def inside_leaf(self, leaf: etree._Element, mode: int, t: CType, datum: Row | None) -> Row:
        """The row for the children of an element that got no frame (a leaf, or skipped)."""
        if mode == SKIP:
            assert datum is not None
            return datum
        self.simple_with_children(leaf, t)
        assert IGNORE.start is not None
        return IGNORE.start

    def tail(self, parent: etree._Element, row: Row, e: etree._Element) -> None:
        """Text after a child, where its parent may hold only elements."""
        if info(row).owner.elem_only and _has_text(e.tail):
            self.text(parent)

    def value(self, el: etree._Element, t: CType) -> None:
        """The simple value of ``el`` through the checker of its type."""
        assert t.value is not None
        value = el.text or ""
        problem = t.value(value)
        if problem is not None:
            self.bad_value(el, value, problem)

    def opened(self, el: etree._Element, t: CType) -> None:
        """Text directly inside element-only content (before the first child, after comments)."""
        if not t.elem_only:
            return
        if _has_text(el.text) or el in self.misc_text:
            self.text(el)

    def close(self, el: etree._Element, row: Row) -> None:
        """The end of an element's content, not ``final``: what required is missing?"""
        at = info(row)
        t = at.owner
        if t.nfa is None:
            self.missing(el, t, at.pos, at.count)
        else:
            self.report(
                "structure.missing",
                f"{_qname(_tag(el))} is incomplete: expected {_nfa_expected(t.nfa, at.states)}",
                el,
            )

    def step(
        self, t: CType, state: frozenset[int], e: etree._Element
    ) -> tuple[frozenset[int], CType]:
        """One child through a nested content model (the xmldsig types)."""
        nfa = t.nfa
        assert nfa is not None
        tag = _tag(e)
        following: set[int] = set()
        matched: Particle | Wildcard | None = None
        for s in state:
            for m, targets in nfa.moves[s]:
                if m.tag == tag if isinstance(m, Particle) else admits(m, tag):
                    following |= targets
                    matched = matched or m
        if matched is None:
            expected = _nfa_expected(nfa, state)
            self.report(
                "structure.unexpected", f"{_qname(tag)} is not allowed here; expected {expected}", e
            )
            return state, IGNORE
        if isinstance(matched, Particle):
            return frozenset(following), TYPES[matched.type]
        return frozenset(following), self.admitted(e, matched.process)

    def admitted(self, el: etree._Element, process: str) -> CType:
        """The type of an element an xsd:any admits: its global declaration, or lax/skip."""
        if process == "skip":
            return IGNORE
        tag = _tag(el)
        declared = GLOBALS.get(tag)
        if declared is not None:
            return declared
        if tag in tables.FOREIGN_GLOBALS:
            self.report(
                "structure.unsupported",
                f"{_qname(tag)} is declared only in a code-list module greenlane does not carry",
                el,
            )
            return IGNORE
        if process == "strict":
            self.report(
                "structure.undeclared",
                f"{_qname(tag)} has no global declaration, which this place demands",
                el,
            )
            return IGNORE
        return LAX

    def simple_with_children(self, el: etree._Element, t: CType) -> None:
        """Simple content interrupted by comments or processing instructions (or elements)."""
        parts = [el.text or ""]
        for child in el:
            if isinstance(child.tag, str):
                self.report(
                    "structure.unexpected",
                    f"{_qname(child.tag)} is not allowed: {_qname(_tag(el))} holds only text",
                    child,
                )
                return
            parts.append(child.tail or "")
        value = "".join(parts)
        if t.value is not None:
            problem = t.value(value)
            if problem is not None:
                self.bad_value(el, value, problem)

    def bad_value(self, el: etree._Element, value: str, problem: tuple[str, str]) -> None:
        code, why = problem
        self.report(code, f"{_qname(_tag(el))} {_shown(value)} {why}", el)

    def attributes(self, el: etree._Element, t: CType, items: list[tuple[str, str]]) -> None:
        attrs = t.attrs
        for name, value in items:
            a = attrs.get(name)
            if a is None:
                self.foreign_attribute(el, t, name, value)
                continue
            problem = a.check(value)
            if problem is not None:
                code, why = problem
                self.report(code, f"attribute {name} {_shown(value)} {why}", el)
                continue
            if a.fixed is not None and normalize(value, a.whitespace) != a.fixed:
                self.report(
                    "structure.attribute-fixed",
                    f"attribute {name} must be {a.fixed!r}, not {_shown(value)}",
                    el,
                )
            if a.is_id:
                key = value.strip(_WS)
                if key in self.ids:
                    self.report(
                        "structure.duplicate-id", f"ID {_shown(key)} is used more than once", el
                    )
                self.ids.add(key)
        for name in t.required_attrs:
            if el.get(name) is None:
                self.report(
                    "structure.attribute-missing",
                    f"{_qname(_tag(el))} lacks required attribute {name}",
                    el,
                )

    def foreign_attribute(self, el: etree._Element, t: CType, name: str, value: str) -> None:
        if name in _XSI_IGNORED:
            return
        if name == _XSI_TYPE and _names_type(el, value, t.key):
            return
        if name == _XSI_TYPE:
            why = f"xsi:type {_shown(value)} names a type other than the declared {t.key}"
            self.report("structure.xsi-type", why, el)
            return
        if name == _XSI_NIL:
            why = f"{_qname(_tag(el))} is not nillable: xsi:nil is not allowed"
        else:
            why = f"attribute {_qname(name)} is not allowed on {_qname(_tag(el))}"
        self.report("structure.attribute-unexpected", why, el)

    # --- diagnoses (off the fast path) -------------------------------------------

    def diagnose(
        self, parent: etree._Element, child: etree._Element, t: CType, row: Row
    ) -> tuple[Row, CType]:
        """Why ``child`` does not fit after ``row``; the row and type to carry on with."""
        i = t.index.get(_tag(child))
        pos, count = info(row).pos, info(row).count
        if i is None or (t.kind == "choice" and pos >= 0 and i != pos):
            expected = _expected_next(t, pos, count)
            self.report(
                "structure.unexpected",
                f"{_qname(_tag(child))} is not allowed here; expected {expected}",
                child,
            )
            return row, IGNORE
        ct = t.child_types[i]
        if i == pos:
            p = t.particles[i]
            times = "once" if p.max == 1 else f"{p.max} times"
            self.report(
                "structure.too-many", f"{_qname(p.tag)} may occur at most {times} here", child
            )
            return row, ct
        if i < pos:
            self.report(
                "structure.order",
                f"{_qname(_tag(child))} is out of order: the schema puts it before "
                f"{_qname(t.particles[pos].tag)}",
                child,
            )
            return row, ct
        needed = [
            t.particles[k]
            for k in range(max(pos, 0), i)
            if (k == pos and count < t.mins[k]) or (k > pos and t.mins[k] > 0)
        ]
        later = {s.tag for s in child.itersiblings()}
        for p in needed:
            if p.tag in later:
                self.report(
                    "structure.order",
                    f"{_qname(_tag(child))} is out of order: {_qname(p.tag)} must come before it",
                    child,
                )
                return row, ct
        names = ", ".join(_qname(p.tag) for p in needed)
        self.report(
            "structure.missing",
            f"{_qname(_tag(parent))} lacks {names} (required before {_qname(_tag(child))})",
            parent,
        )
        return t.rows[(i, 1)], ct

    def missing(self, el: etree._Element, t: CType, pos: int, count: int) -> None:
        if t.kind == "choice" and pos < 0:
            names = ", ".join(_qname(p.tag) for p in t.particles)
            self.report("structure.missing", f"{_qname(_tag(el))} needs one of {names}", el)
            return
        needed = [
            _qname(t.particles[k].tag)
            for k in range(max(pos, 0), len(t.particles))
            if (k == pos and count < t.mins[k]) or (k > pos and t.mins[k] > 0)
        ]
        if t.kind == "choice":
            needed = needed[:1]
        self.report(
            "structure.missing", f"{_qname(_tag(el))} lacks required {', '.join(needed)}", el
        )

    def text(self, el: etree._Element) -> None:
        if el in self.text_reported:
            return
        self.text_reported.add(el)
        self.report("structure.text", f"{_qname(_tag(el))} may contain only elements, not text", el)


# --- messages --------------------------------------------------------------------


def _tag(el: etree._Element) -> str:
    tag = el.tag
    return tag if isinstance(tag, str) else ""


def _qname(tag: str) -> str:
    """``{uri}Local`` as ``prefix:Local`` for messages."""
    if tag[:1] != "{":
        return tag
    uri, local = tag[1:].split("}", 1)
    prefix = _PREFIX_OF.get(uri)
    return f"{prefix}:{local}" if prefix else f"{{{uri}}}{local}"


def _shown(value: str) -> str:
    value = value.strip(_WS)
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _has_text(text: str | None) -> bool:
    return text is not None and bool(text.strip(_WS))


def _misc_text(root: etree._Element) -> set[etree._Element]:
    """The elements with text after a child that is not an element (a comment, say)."""
    parents: set[etree._Element] = set()
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        tail = node.tail
        if tail not in _BLANK and tail.strip(_WS):  # type: ignore[union-attr]
            parents.add(node.getparent())  # type: ignore[arg-type]
    return parents


def _names_type(el: etree._Element, value: str, key: str) -> bool:
    """Whether the xsi:type QName ``value`` resolves to the type ``key``."""
    prefix, _, local = collapse(value).rpartition(":")
    uri = el.nsmap.get(prefix or None)
    own_prefix, _, own_local = key.partition(":")
    return uri is not None and uri == tables.TYPE_PREFIXES.get(own_prefix) and local == own_local


def _expected_next(t: CType, pos: int, count: int) -> str:
    """What the content model of ``t`` accepts after ``count`` of particle ``pos``."""
    names: list[str] = []
    if t.kind == "choice":
        if pos < 0:
            names = [_qname(p.tag) for p in t.particles]
        elif count < t.maxs[pos]:
            names = [_qname(t.particles[pos].tag)]
    else:
        if pos >= 0 and count < t.maxs[pos]:
            names.append(_qname(t.particles[pos].tag))
        for k in range(pos + 1, len(t.particles)):
            names.append(_qname(t.particles[k].tag))
            if t.mins[k] > 0:
                break
    if not names:
        return f"nothing more in {t.key}"
    return ("one of " if len(names) > 1 else "") + ", ".join(names)


def _nfa_expected(nfa: Nfa, current: frozenset[int]) -> str:
    names: list[str] = []
    for s in sorted(current):
        for m, _targets in nfa.moves[s]:
            name = _qname(m.tag) if isinstance(m, Particle) else "any element"
            if name not in names:
                names.append(name)
    if not names:
        return "no more elements"
    return ("one of " if len(names) > 1 else "") + ", ".join(names)


# --- paths -----------------------------------------------------------------------


def element_path(
    el: etree._Element, cache: dict[etree._Element, tuple[str, CType | None]] | None = None
) -> str:
    """An XPath to ``el`` in the standard prefixes, with a position wherever one may repeat."""
    return _path_and_type(el, {} if cache is None else cache)[0]


def _path_and_type(
    el: etree._Element, cache: dict[etree._Element, tuple[str, CType | None]]
) -> tuple[str, CType | None]:
    known = cache.get(el)
    if known is not None:
        return known
    tag = _tag(el)
    parent = el.getparent()
    if parent is None:
        result: tuple[str, CType | None] = (
            "/" + _step_name(tag),
            ROOT_TYPE if tag == tables.ROOT.tag else None,
        )
    else:
        parent_path, parent_type = _path_and_type(parent, cache)
        p = _particle(parent_type, tag)
        step = _step_name(tag)
        before = sum(1 for _ in el.itersiblings(tag, preceding=True))
        if p is None or p.max != 1 or before or next(el.itersiblings(tag), None) is not None:
            step = f"{step}[{before + 1}]"
        child_type = TYPES.get(p.type) if p is not None else GLOBALS.get(tag)
        result = (f"{parent_path}/{step}", child_type)
    cache[el] = result
    return result


def _particle(t: CType | None, tag: str) -> Particle | None:
    if t is None:
        return None
    for p in t.particles:
        if p.tag == tag:
            return p
    return None


def _step_name(tag: str) -> str:
    if tag[:1] != "{":
        return tag
    uri, local = tag[1:].split("}", 1)
    prefix = _PREFIX_OF.get(uri)
    if prefix is not None:
        return f"{prefix}:{local}"
    return f"*[local-name()='{local}' and namespace-uri()='{uri}']"
