"""Read an SPS certificate into the model, keeping everything as it was written.

Elements out of schema order keep their order (``Node.order``); elements the
schema does not allow in a place are kept whole (``Node.extra``); leaf text is
kept character for character. Validation is separate: reading never refuses a
well-formed document in the SPS namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from greenlane.safexml import XmlDocument
from greenlane.sps.binding import ROOT_TYPE, Binding, binding
from greenlane.sps.nodes import Node, RawXml


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate as read: the model and the exact bytes it came from."""

    root: Node
    raw: bytes


def _raw(element: etree._Element) -> RawXml:
    return RawXml(etree.tostring(element, encoding="UTF-8", with_tail=False))


def read_element(element: etree._Element, type_key: str) -> Node:
    spec: Binding = binding(type_key)
    node = spec.model()
    for name, attribute_value in element.attrib.items():
        attribute = spec.by_attribute.get(str(name))
        if attribute is None:
            node.other_attributes[str(name)] = attribute_value
        else:
            setattr(node, attribute.field, attribute_value)
    if spec.simple:
        node.value = element.text or ""  # type: ignore[attr-defined]
        node.extra.extend(_raw(child) for child in element.iterchildren(etree.Element))
        return node
    if element.text and element.text.strip():
        node.text = element.text
    order: list[str] = []
    for child in element.iterchildren(etree.Element):
        slot = spec.by_tag.get(str(child.tag))
        if slot is None:
            node.extra.append(_raw(child))
            order.append("#extra")
            continue
        if slot.kind == "complex":
            value: object = read_element(child, slot.type)
        elif slot.kind == "opaque":
            value = _raw(child)
        elif len(child) or child.attrib:  # a plain value cannot hold these: keep it whole
            node.extra.append(_raw(child))
            order.append("#extra")
            continue
        else:
            value = child.text or ""
        if slot.many:
            getattr(node, slot.field).append(value)
        elif getattr(node, slot.field) is None:
            setattr(node, slot.field, value)
        else:  # a second one where the schema allows one: keep it, out of place
            node.extra.append(_raw(child))
            order.append("#extra")
            continue
        order.append(slot.field)
    node.order = order
    return node


def read_certificate(document: XmlDocument) -> Certificate:
    """The model of a document whose root the caller has checked is rsm:SPSCertificate."""
    return Certificate(root=read_element(document.root, ROOT_TYPE), raw=document.raw)
