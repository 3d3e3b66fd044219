"""XML equivalence for round-trip tests: same elements, attributes and text, same order.

Prefixes, comments, processing instructions and indentation between elements do
not count; text in a leaf element counts character for character.
"""

from __future__ import annotations

from lxml import etree


def _elements(element: etree._Element) -> list[etree._Element]:
    return list(element.iterchildren(etree.Element))


def difference(a: etree._Element, b: etree._Element, path: str = "") -> str | None:
    """None when equivalent, else where and how the two first differ."""
    here = f"{path}/{etree.QName(a).localname}"
    if a.tag != b.tag:
        return f"{here}: tag {a.tag} != {b.tag}"
    if dict(a.attrib) != dict(b.attrib):
        return f"{here}: attributes {dict(a.attrib)} != {dict(b.attrib)}"
    children_a, children_b = _elements(a), _elements(b)
    if not children_a and not children_b and (a.text or "") != (b.text or ""):
        return f"{here}: text {a.text!r} != {b.text!r}"
    if [c.tag for c in children_a] != [c.tag for c in children_b]:
        return f"{here}: children {[c.tag for c in children_a]} != {[c.tag for c in children_b]}"
    for child_a, child_b in zip(children_a, children_b, strict=True):
        found = difference(child_a, child_b, here)
        if found:
            return found
    return None
