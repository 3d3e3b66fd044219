"""The record classes of the generated SPS structure tables (``sps/tables.py``).

Hand-written and small on purpose: ``tools/gen_sps_tables.py`` instantiates
these from the official XSD, and everything that needs the structure (the
structural validator, readers, writers) codes against them, never against an
XSD at run time. Keys of simple and complex types are ``prefix:LocalName``
(anonymous types get a synthesized key such as ``udt:DateTimeType/DateTimeString``).

Most SPS content models are one flat ``sequence`` or ``choice`` of element
particles that the group itself occurs once; ``ComplexType.particles`` says it
all then. The xmldsig types nest groups, repeat them and use wildcards: for
those ``ComplexType.group`` holds the exact model and is authoritative, while
``particles`` still lists the element particles it can match, in schema order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProcessContents = Literal["strict", "lax", "skip"]


@dataclass(frozen=True, slots=True)
class SimpleType:
    """A simple type with every facet of its derivation chain (the most derived one wins).

    ``builtin`` is the XSD built-in it rests on ("anySimpleType" for a union,
    whose ``members`` are type keys). ``patterns`` are in Python ``re`` syntax
    for ``fullmatch``: one entry per derivation step, all of which must match
    (alternatives within a step are already joined with ``|``). Range facets
    keep their lexical form.
    """

    name: str
    builtin: str
    enumeration: frozenset[str] | None = None
    patterns: tuple[str, ...] = ()
    length: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    total_digits: int | None = None
    fraction_digits: int | None = None
    min_inclusive: str | None = None
    max_inclusive: str | None = None
    min_exclusive: str | None = None
    max_exclusive: str | None = None
    members: tuple[str, ...] = ()
    whitespace: Literal["preserve", "replace", "collapse"] = "collapse"
    """The whiteSpace facet in force: values are normalized by it before any facet."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute use: its name as it appears, its SimpleType key, whether it must be there."""

    name: str
    type: str
    required: bool
    fixed: str | None = None
    """When set, a present attribute must have this value (after whitespace normalization)."""


@dataclass(frozen=True, slots=True)
class Particle:
    """An element particle: Clark tag, type key (complex or simple), occurrences (max None: any)."""

    tag: str
    type: str
    min: int
    max: int | None


@dataclass(frozen=True, slots=True)
class Wildcard:
    """An ``xsd:any``: which namespaces it admits and how the admitted elements are judged."""

    namespaces: frozenset[str] | None
    """Admitted namespace URIs ("" is no namespace); None admits any namespace."""
    excluded: frozenset[str]
    """Namespace URIs refused (``##other`` refuses the schema's own and no namespace)."""
    process: ProcessContents
    min: int
    max: int | None


@dataclass(frozen=True, slots=True)
class Group:
    """A nested content model: a sequence or choice of particles, wildcards and groups."""

    model: Literal["sequence", "choice"]
    items: tuple[Particle | Wildcard | Group, ...]
    min: int = 1
    max: int | None = 1


@dataclass(frozen=True, slots=True)
class ComplexType:
    """A complex type: a flat sequence/choice of particles, empty, or simple content."""

    name: str
    model: Literal["sequence", "choice", "empty", "simple"]
    particles: tuple[Particle, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    simple: str | None = None
    group: Group | None = None
    """The exact content model when it is not one flat group occurring once (xmldsig)."""
    mixed: bool = False
    """Text may appear between the child elements."""
