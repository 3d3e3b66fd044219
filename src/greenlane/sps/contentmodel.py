"""The SPS types compiled for checking: built once, at import, from the generated tables.

A flat sequence or choice becomes a small deterministic automaton whose states
are :data:`Row` dicts: ``row[tag]`` gives, in one dict lookup, a
:data:`Step` with everything the validator needs for a valid child (the
following row, the child's mode, type and what its mode uses), so a valid child
costs the validator almost nothing. The nested xmldsig models become a
nondeterministic automaton (:class:`Nfa`, a few states, walked as a set) whose
rows have no steps: every child is worked out off the fast path. Attributes and
simple values get their checkers from :mod:`greenlane.sps.lexical`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from greenlane.sps import tables
from greenlane.sps.lexical import (
    Checker,
    compile_checkers,
    normalize,
    plain_codes,
    plain_pattern,
)
from greenlane.sps.tabletypes import ComplexType, Group, Particle, SimpleType, Wildcard

CHECKERS: dict[str, Checker] = compile_checkers(tables.SIMPLE_TYPES)

# How a child is handled once its type is known (the hot loop branches on these,
# the most frequent first).
COMPLEX = 0
"""Element content without required attributes: the element gets a frame."""
LEAF = 1
"""Simple content whose value needs no check (strings, tokens)."""
CODE = 2
"""Simple content that is one code of a code list: a set lookup, inline."""
PATTERN = 3
"""Simple content that only has to match an expression (a decimal, say): one match, inline."""
VALUE = 4
"""Simple content whose value is checked."""
SKIP = 5
"""Not validated (unexpected, or admitted by a skip wildcard), or lax-assessed."""
GENERAL = 6
"""Required attributes (either content): the general (slower) path."""


@dataclass(slots=True)
class Attr:
    name: str
    check: Checker
    whitespace: str
    fixed: str | None
    is_id: bool


@dataclass(slots=True, eq=False)
class RowInfo:
    """Where a content model is: after copy ``count`` of particle ``pos`` of a flat
    model, or in the automaton ``states`` of a nested one. ``final``: the content
    may end here."""

    owner: CType
    pos: int = -1
    count: int = 0
    final: bool = False
    states: frozenset[int] = frozenset()


Row = dict[str | None, Any]
"""A state of a content model: the steps out of it by child tag, its RowInfo under None.

A plain dict, so that the validator finds a valid child's step with one
subscript; None is no element's tag. A nested model's rows have no steps.
"""


def new_row(
    owner: CType,
    pos: int = -1,
    count: int = 0,
    final: bool = False,
    states: frozenset[int] = frozenset(),
) -> Row:
    return {None: RowInfo(owner, pos, count, final, states)}


def info(row: Row) -> RowInfo:
    found: RowInfo = row[None]
    return found


Step = tuple[Row, int, "CType", Any]
"""(the row after the child, the child's mode, its type, its mode's datum).

The datum is the type's start row for COMPLEX, SKIP and a GENERAL element with
element content, the code set for CODE, the expression's ``fullmatch`` for
PATTERN, the value checker for VALUE and a GENERAL simple value (None when any
text will do), and None for LEAF.
"""


@dataclass(slots=True)
class Nfa:
    """An automaton over child elements for a nested content model (xmldsig)."""

    start: frozenset[int]
    accept: int
    moves: list[list[tuple[Particle | Wildcard, frozenset[int]]]]


@dataclass(slots=True, eq=False)
class CType:
    """One complex type (or a simple type used as an element type), ready to check."""

    key: str
    kind: str  # "sequence", "choice", "nfa", "simple", "ignore", "lax"
    particles: tuple[Particle, ...] = ()
    index: dict[str, int] = field(default_factory=dict)
    mins: tuple[int, ...] = ()
    maxs: tuple[float, ...] = ()
    attrs: dict[str, Attr] = field(default_factory=dict)
    required_attrs: tuple[str, ...] = ()
    value: Checker | None = None
    """The checker of simple content; None when any text is valid."""
    codes: frozenset[str] | None = None
    """For a pure code-list type (mode CODE): the codes."""
    pattern: re.Pattern[str] | None = None
    """For a type that is a bare expression-checked built-in (mode PATTERN): the expression."""
    mixed: bool = False
    elem_only: bool = False
    """Element content without mixed text: any non-whitespace text is an error."""
    mode: int = COMPLEX
    nfa: Nfa | None = None
    child_types: tuple[CType, ...] = ()
    start: Row | None = None
    """The row before the first child (None for simple content)."""
    rows: dict[tuple[int, int], Row] = field(default_factory=dict)
    datum: Any = None
    """What an element of this type needs in its mode (see :data:`Step`)."""


def _attr(a_name: str, type_key: str, fixed: str | None) -> Attr:
    st: SimpleType = tables.SIMPLE_TYPES[type_key]
    fixed_normal = normalize(fixed, st.whitespace) if fixed is not None else None
    return Attr(a_name, CHECKERS[type_key], st.whitespace, fixed_normal, st.builtin == "ID")


def _value_checker(type_key: str) -> Checker | None:
    st = tables.SIMPLE_TYPES[type_key]
    trivial = (
        st.builtin in ("string", "normalizedString", "token", "anySimpleType")
        and st.enumeration is None
        and not st.patterns
        and st.length is None
        and st.min_length is None
        and st.max_length is None
        and not st.members
    )
    return None if trivial else CHECKERS[type_key]


def _compile_complex(ct: ComplexType) -> CType:
    t = CType(ct.name, ct.model, ct.particles, mixed=ct.mixed)
    t.attrs = {a.name: _attr(a.name, a.type, a.fixed) for a in ct.attributes}
    t.required_attrs = tuple(a.name for a in ct.attributes if a.required)
    if ct.model == "simple":
        assert ct.simple is not None
        t.value = _value_checker(ct.simple)
        t.codes = plain_codes(tables.SIMPLE_TYPES[ct.simple])
        t.pattern = plain_pattern(tables.SIMPLE_TYPES[ct.simple])
        t.mode = _simple_mode(t)
        return t
    t.elem_only = not ct.mixed
    t.mode = _complex_mode(t)
    if ct.group is not None:
        t.kind = "nfa"
        t.nfa = _build_nfa(ct.group)
        return t
    if ct.model == "empty":
        t.kind = "sequence"
    t.index = {p.tag: i for i, p in enumerate(ct.particles)}
    t.mins = tuple(p.min for p in ct.particles)
    t.maxs = tuple(float("inf") if p.max is None else p.max for p in ct.particles)
    return t


def _compile_simple(key: str) -> CType:
    t = CType(key, "simple", value=_value_checker(key))
    t.codes = plain_codes(tables.SIMPLE_TYPES[key])
    t.pattern = plain_pattern(tables.SIMPLE_TYPES[key])
    t.mode = _simple_mode(t)
    return t


def _complex_mode(t: CType) -> int:
    return GENERAL if t.required_attrs else COMPLEX


def _simple_mode(t: CType) -> int:
    if t.required_attrs:
        return GENERAL
    if t.value is None:
        return LEAF
    if t.codes is not None:
        return CODE
    return PATTERN if t.pattern is not None else VALUE


# --- flat models as rows ----------------------------------------------------------


def _step(row: Row, child: CType) -> Step:
    return (row, child.mode, child, child.datum)


def _datum(t: CType) -> Any:
    if t.start is not None:
        return t.start
    if t.mode == CODE:
        return t.codes
    if t.mode == PATTERN:
        assert t.pattern is not None
        return t.pattern.fullmatch
    return t.value


def _slots(particles: tuple[Particle, ...]) -> list[tuple[int, int, bool, bool]]:
    """Each particle unrolled into copies: (particle, copy number, required, repeats)."""
    slots = []
    for k, p in enumerate(particles):
        copies = max(p.min, 1) if p.max is None else p.max
        for c in range(1, copies + 1):
            slots.append((k, c, c <= p.min, p.max is None and c == copies))
    return slots


def _build_sequence_rows(t: CType) -> None:
    slots = _slots(t.particles)
    assert t.start is not None
    rows = [t.start] + [new_row(t, k, c) for k, c, _req, _rep in slots]
    for s in range(-1, len(slots)):
        row = rows[s + 1]
        if s >= 0 and slots[s][3]:  # a repeating copy may follow itself
            k = slots[s][0]
            row[t.particles[k].tag] = _step(row, t.child_types[k])
        info(row).final = True
        for u in range(s + 1, len(slots)):
            k, _c, required, _rep = slots[u]
            row.setdefault(t.particles[k].tag, _step(rows[u + 1], t.child_types[k]))
            if required:
                info(row).final = False
                break
    t.rows = {(info(r).pos, info(r).count): r for r in rows}


def _build_choice_rows(t: CType) -> None:
    start = t.start
    assert start is not None
    info(start).final = any(p.min == 0 for p in t.particles) or not t.particles
    rows = {(-1, 0): start}
    for k, p in enumerate(t.particles):
        copies = max(p.min, 1) if p.max is None else p.max
        chain = [new_row(t, k, c, final=c >= p.min) for c in range(1, copies + 1)]
        start[p.tag] = _step(chain[0], t.child_types[k])
        for a, b in pairwise(chain):
            a[p.tag] = _step(b, t.child_types[k])
        if p.max is None:
            chain[-1][p.tag] = _step(chain[-1], t.child_types[k])
        rows.update({(k, c): r for c, r in enumerate(chain, 1)})
    t.rows = rows


def nfa_row(t: CType, states: frozenset[int]) -> Row:
    """The row of a nested model in automaton ``states`` (no steps: each child is worked out)."""
    assert t.nfa is not None
    return new_row(t, final=t.nfa.accept in states, states=states)


# --- nested models as an NFA ------------------------------------------------------


def _build_nfa(group: Group) -> Nfa:
    """Thompson construction; every repeated term gets a private entry state."""
    moves: list[list[tuple[Particle | Wildcard, int]]] = []
    epsilon: list[list[int]] = []

    def state() -> int:
        moves.append([])
        epsilon.append([])
        return len(moves) - 1

    def once(item: Particle | Wildcard | Group, start: int) -> int:
        if isinstance(item, Group):
            if item.model == "sequence":
                for sub in item.items:
                    start = repeated(sub, start)
                return start
            end = state()
            for sub in item.items:
                epsilon[repeated(sub, start)].append(end)
            return end
        end = state()
        moves[start].append((item, end))
        return end

    def repeated(item: Particle | Wildcard | Group, start: int) -> int:
        entry = state()
        epsilon[start].append(entry)
        for _ in range(item.min):
            entry = once(item, entry)
        end = state()
        epsilon[entry].append(end)
        if item.max is None:
            epsilon[once(item, entry)].append(entry)
        else:
            for _ in range(item.max - item.min):
                entry = once(item, entry)
                epsilon[entry].append(end)
        return end

    first = state()
    accept = repeated(group, first)
    closures = [_closure(s, epsilon) for s in range(len(moves))]
    closed = [[(m, closures[t]) for m, t in row] for row in moves]
    return Nfa(closures[first], accept, closed)


def _closure(s: int, epsilon: list[list[int]]) -> frozenset[int]:
    seen = {s}
    stack = [s]
    while stack:
        for t in epsilon[stack.pop()]:
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return frozenset(seen)


def admits(w: Wildcard, tag: str) -> bool:
    uri = tag[1 : tag.index("}")] if tag[:1] == "{" else ""
    return (w.namespaces is None or uri in w.namespaces) and uri not in w.excluded


# --- everything, once -----------------------------------------------------------------

TYPES: dict[str, CType] = {key: _compile_complex(ct) for key, ct in tables.COMPLEX_TYPES.items()}
TYPES.update({key: _compile_simple(key) for key in tables.SIMPLE_TYPES})
IGNORE = CType("#ignore", "ignore", mode=SKIP)
"""The subtree is not validated: an unexpected element, or one a skip wildcard admits."""
LAX = CType("#lax", "lax", mode=SKIP)
"""An undeclared element a lax wildcard admits: only its declared descendants are validated."""
for _t in (*TYPES.values(), IGNORE, LAX):
    _t.child_types = tuple(TYPES[p.type] for p in _t.particles)
    if _t.nfa is not None:
        _t.start = nfa_row(_t, _t.nfa.start)
    elif _t.kind != "simple":
        _t.start = new_row(_t, final=_t.kind in ("ignore", "lax"))
    _t.datum = _datum(_t)
for _t in TYPES.values():
    if _t.kind == "sequence":
        _build_sequence_rows(_t)
    elif _t.kind == "choice":
        _build_choice_rows(_t)

ROOT_TYPE = TYPES[tables.ROOT.type]
GLOBALS: dict[str, CType] = {tag: TYPES[key] for tag, key in tables.GLOBAL_ELEMENTS.items()}
