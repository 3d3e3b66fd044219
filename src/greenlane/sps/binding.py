"""How model classes map to XML, computed once from the generated tables.

Reader, writers and the JSON form all go through these bindings, so the three
can never disagree about a name, a cardinality or an order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from greenlane.sps import tables
from greenlane.sps.model import CLASSES
from greenlane.sps.nodes import Node

Kind = Literal["complex", "leaf", "opaque"]


def snake(name: str) -> str:
    """The model's field name for an XML name (``IncludedSPSNote`` -> ``included_sps_note``)."""
    local = name.split("}")[-1]
    out = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", local).lower()
    return out + "_" if out in _KEYWORDS else out


_KEYWORDS = frozenset({"class", "def", "from", "global", "import", "in", "is", "lambda", "not"})


@dataclass(frozen=True, slots=True)
class Slot:
    """One child element of a type: its tag, model field, cardinality and kind."""

    tag: str
    local: str
    field: str
    many: bool
    kind: Kind
    type: str


@dataclass(frozen=True, slots=True)
class AttributeSlot:
    name: str
    field: str


@dataclass(frozen=True, slots=True)
class Binding:
    type_key: str
    model: type[Node]
    slots: tuple[Slot, ...]
    by_tag: dict[str, Slot]
    by_local: dict[str, Slot]
    by_field: dict[str, Slot]
    attributes: tuple[AttributeSlot, ...]
    by_attribute: dict[str, AttributeSlot]
    simple: bool


def _kind(type_key: str) -> Kind:
    if type_key.startswith("ds:"):
        return "opaque"
    if type_key in CLASSES:
        return "complex"
    return "leaf"


@cache
def binding(type_key: str) -> Binding:
    ctype = tables.COMPLEX_TYPES[type_key]
    slots = tuple(
        Slot(
            tag=p.tag,
            local=p.tag.split("}")[-1],
            field=snake(p.tag),
            many=p.max != 1,
            kind=_kind(p.type),
            type=p.type,
        )
        for p in ctype.particles
    )
    attributes = tuple(AttributeSlot(a.name, snake(a.name)) for a in ctype.attributes)
    return Binding(
        type_key=type_key,
        model=CLASSES[type_key],
        slots=slots,
        by_tag={s.tag: s for s in slots},
        by_local={s.local: s for s in slots},
        by_field={s.field: s for s in slots},
        attributes=attributes,
        by_attribute={a.name: a for a in attributes},
        simple=ctype.model == "simple",
    )


ROOT_TAG = tables.ROOT.tag
ROOT_TYPE = tables.ROOT.type


def canonical_order(node: Node) -> list[str]:
    """The field sequence schema order gives for what ``node`` holds (extras last)."""
    order: list[str] = []
    for slot in binding(node.TYPE).slots:
        value = getattr(node, slot.field)
        if slot.many:
            order.extend([slot.field] * len(value))
        elif value is not None:
            order.append(slot.field)
    order.extend(["#extra"] * len(node.extra))
    return order
