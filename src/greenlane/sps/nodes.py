"""The base of every SPS model class: what a node remembers beyond its schema fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class RawXml:
    """An element kept exactly as XML (the XML signature, or an element out of place)."""

    xml: bytes


@dataclass(slots=True, kw_only=True)
class Node:
    """Fields shared by all model classes.

    ``order`` lists, in reading order, the field name of each child element read
    (``"#extra"`` for an element kept in ``extra``); ``None`` means schema order.
    ``other_attributes`` holds attributes the schema does not declare (such as
    ``xsi:schemaLocation``), by Clark name; ``text`` keeps text written where
    the schema expects only elements.
    """

    TYPE: ClassVar[str] = ""
    order: list[str] | None = None
    text: str | None = None
    extra: list[RawXml] = field(default_factory=list)
    other_attributes: dict[str, str] = field(default_factory=dict)
