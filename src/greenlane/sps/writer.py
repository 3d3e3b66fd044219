"""Write the model as XML, faithfully or canonically.

*Faithful* gives back an equivalent of what was read: the same elements,
attributes and text, in the order they were read, out-of-place elements
included. *Canonical* writes schema order and nothing the schema does not allow,
for the certificates greenlane issues itself, and refuses to emit a document the
structural check rejects.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from greenlane.errors import GreenlaneError
from greenlane.findings import Finding, has_errors
from greenlane.safexml import parse_bytes
from greenlane.sps import tables
from greenlane.sps.binding import ROOT_TAG, Slot, binding, canonical_order
from greenlane.sps.nodes import Node, RawXml

_PREFIXES = ("rsm", "ram", "udt", "qdt")
NSMAP = {p: tables.NAMESPACES[p] for p in _PREFIXES if p in tables.NAMESPACES}


class NotCanonical(GreenlaneError):
    """The model cannot be written as a schema-valid certificate; findings say why."""

    code = "sps.not-canonical"

    def __init__(self, message: str, findings: list[Finding] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


def _raw_element(raw: RawXml) -> etree._Element:
    return parse_bytes(raw.xml).root


def _children(node: Node, canonical: bool) -> Iterator[tuple[Slot | None, object]]:
    """(slot, value) per child element, in the order to write them."""
    spec = binding(node.TYPE)
    order = canonical_order(node) if canonical or node.order is None else node.order
    taken: dict[str, int] = {}
    extras = iter(node.extra)
    for name in order:
        if name == "#extra":
            yield None, next(extras)
            continue
        slot = spec.by_field[name]
        value = getattr(node, slot.field)
        if slot.many:
            index = taken.get(name, 0)
            taken[name] = index + 1
            yield slot, value[index]
        else:
            yield slot, value


def _build(node: Node, tag: str, canonical: bool, nsmap: dict[str, str] | None) -> etree._Element:
    spec = binding(node.TYPE)
    element = etree.Element(tag, nsmap=nsmap)
    for attribute in spec.attributes:
        value = getattr(node, attribute.field)
        if value is not None:
            element.set(attribute.name, value)
    if not canonical:
        for name, value in node.other_attributes.items():
            element.set(name, value)
        if node.text is not None and not spec.simple:
            element.text = node.text
    if spec.simple:
        element.text = node.value  # type: ignore[attr-defined]
        if not canonical:
            element.extend(_raw_element(raw) for raw in node.extra)
        return element
    for slot, value in _children(node, canonical):
        if slot is None:
            assert isinstance(value, RawXml)
            element.append(_raw_element(value))
        elif slot.kind == "complex":
            assert isinstance(value, Node)
            element.append(_build(value, slot.tag, canonical, None))
        elif slot.kind == "opaque":
            assert isinstance(value, RawXml)
            element.append(_raw_element(value))
        else:
            child = etree.SubElement(element, slot.tag)
            child.text = str(value)
    return element


_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def _has_extras(node: Node) -> bool:
    """Anything canonical output would drop, but schema-location hints (they are not content)."""
    foreign = any(not name.startswith(_XSI) for name in node.other_attributes)
    if node.extra or foreign or (node.text and not binding(node.TYPE).simple):
        return True
    spec = binding(node.TYPE)
    for slot in spec.slots:
        if slot.kind != "complex":
            continue
        value = getattr(node, slot.field)
        children = value if slot.many else ([] if value is None else [value])
        if any(_has_extras(child) for child in children):
            return True
    return False


def to_element(root: Node, *, canonical: bool = False) -> etree._Element:
    return _build(root, ROOT_TAG, canonical, NSMAP)


def write_faithful(root: Node) -> bytes:
    """An equivalent of the document that was read, in its own order."""
    return etree.tostring(to_element(root), xml_declaration=True, encoding="UTF-8")


def write_canonical(root: Node) -> bytes:
    """Schema order, only what the schema allows; refuses what would not be valid."""
    from greenlane.sps.structure import check_structure

    if _has_extras(root):
        raise NotCanonical("the certificate holds elements the schema does not allow there")
    element = to_element(root, canonical=True)
    findings = check_structure(element)
    if has_errors(findings):
        raise NotCanonical("the certificate is not schema-valid", findings)
    etree.indent(element, space="  ")
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")
