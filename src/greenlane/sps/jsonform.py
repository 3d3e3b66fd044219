"""The JSON form of an SPS certificate, and back.

Field names are the schema's element names, so anyone who knows the SPS schema
can read it; the shape of each field is fixed by the schema:

- an element that may repeat is always an array, one that may not is a value;
- a leaf is a string, or ``{"value": "...", "@attribute": "..."}`` when it
  carries attributes (readers accept the string form for either);
- a group of elements is an object;
- ``"#text"`` keeps text written where the schema expects only elements,
- ``"#order"`` (only when a document's elements were not in schema order) lists
  the element names in the order read, ``"#extra"`` holds elements the schema
  does not allow there as XML text, ``"@{namespace}name"`` keeps attributes the
  schema does not declare, and an XML signature is ``{"#xml": "..."}``.

Nothing is lost: XML -> JSON -> XML gives back an equivalent document.
"""

from __future__ import annotations

from typing import Any

from greenlane.codes import finding
from greenlane.errors import GreenlaneError
from greenlane.findings import Finding
from greenlane.sps.binding import ROOT_TYPE, Slot, binding, canonical_order
from greenlane.sps.nodes import Node, RawXml

ROOT_KEY = "SPSCertificate"


class JsonFormError(GreenlaneError):
    """The JSON does not have the shape of a certificate; ``finding`` says where."""

    def __init__(self, found: Finding) -> None:
        super().__init__(found.message, code=found.code)
        self.finding = found


def _fail(code: str, message: str, pointer: str) -> JsonFormError:
    return JsonFormError(finding(code, message, pointer or "/"))


# -- model -> JSON ------------------------------------------------------------


def _leaf_json(node: Node) -> Any:
    spec = binding(node.TYPE)
    attributes = {
        f"@{a.name}": getattr(node, a.field)
        for a in spec.attributes
        if getattr(node, a.field) is not None
    }
    attributes.update({f"@{k}": v for k, v in node.other_attributes.items()})
    value = node.value  # type: ignore[attr-defined]
    if not attributes and not node.extra:
        return value
    out: dict[str, Any] = {"value": value, **attributes}
    if node.extra:
        out["#extra"] = [raw.xml.decode() for raw in node.extra]
    return out


def _value_json(slot: Slot, value: object) -> Any:
    if slot.kind == "opaque":
        assert isinstance(value, RawXml)
        return {"#xml": value.xml.decode()}
    if isinstance(value, Node):
        return to_json_node(value)
    return value


def to_json_node(node: Node) -> Any:
    spec = binding(node.TYPE)
    if spec.simple:
        return _leaf_json(node)
    out: dict[str, Any] = {}
    for attribute in spec.attributes:
        value = getattr(node, attribute.field)
        if value is not None:
            out[f"@{attribute.name}"] = value
    out.update({f"@{k}": v for k, v in node.other_attributes.items()})
    for slot in spec.slots:
        value = getattr(node, slot.field)
        if slot.many:
            if value:
                out[slot.local] = [_value_json(slot, v) for v in value]
        elif value is not None:
            out[slot.local] = _value_json(slot, value)
    if node.extra:
        out["#extra"] = [raw.xml.decode() for raw in node.extra]
    if node.text is not None:
        out["#text"] = node.text
    if node.order is not None and node.order != canonical_order(node):
        out["#order"] = [
            "#extra" if name == "#extra" else spec.by_field[name].local for name in node.order
        ]
    return out


def to_json(root: Node) -> dict[str, Any]:
    return {ROOT_KEY: to_json_node(root)}


# -- JSON -> model ------------------------------------------------------------


def _text(value: Any, pointer: str) -> str:
    if not isinstance(value, str):
        raise _fail("json.type", f"expected a string, found {type(value).__name__}", pointer)
    return value


def _raw(value: Any, pointer: str) -> RawXml:
    return RawXml(_text(value, pointer).encode())


def _apply_attributes(node: Node, data: dict[str, Any], pointer: str) -> None:
    spec = binding(node.TYPE)
    for key, value in data.items():
        if not key.startswith("@"):
            continue
        name = key[1:]
        attribute = spec.by_attribute.get(name)
        text = _text(value, f"{pointer}/{key}")
        if attribute is not None:
            setattr(node, attribute.field, text)
        elif name.startswith("{"):
            node.other_attributes[name] = text
        else:
            raise _fail("json.unknown-field", f"no attribute {name!r} here", f"{pointer}/{key}")


def _leaf_node(type_key: str, data: Any, pointer: str) -> Node:
    node = binding(type_key).model()
    if isinstance(data, str):
        node.value = data  # type: ignore[attr-defined]
        return node
    if not isinstance(data, dict):
        raise _fail("json.type", "expected a string or an object", pointer)
    for key in data:
        if key not in ("value", "#extra") and not key.startswith("@"):
            raise _fail("json.unknown-field", f"no field {key!r} in a value", f"{pointer}/{key}")
    node.value = _text(data.get("value", ""), f"{pointer}/value")  # type: ignore[attr-defined]
    _apply_attributes(node, data, pointer)
    node.extra = [_raw(x, f"{pointer}/#extra") for x in _list(data.get("#extra", []), pointer)]
    return node


def _list(value: Any, pointer: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail("json.type", "expected an array", pointer)
    return value


def _slot_value(slot: Slot, data: Any, pointer: str) -> object:
    if slot.kind == "opaque":
        if not isinstance(data, dict) or set(data) != {"#xml"}:
            raise _fail("json.type", 'expected {"#xml": "..."}', pointer)
        return _raw(data["#xml"], f"{pointer}/#xml")
    if slot.kind == "complex":
        return from_json_node(slot.type, data, pointer)
    return _text(data, pointer)


def from_json_node(type_key: str, data: Any, pointer: str = "") -> Node:
    spec = binding(type_key)
    if spec.simple:
        return _leaf_node(type_key, data, pointer)
    if not isinstance(data, dict):
        raise _fail("json.type", "expected an object", pointer)
    node = spec.model()
    _apply_attributes(node, data, pointer)
    for key, value in data.items():
        if key.startswith(("@", "#")):
            continue
        slot = spec.by_local.get(key)
        here = f"{pointer}/{key}"
        if slot is None:
            raise _fail("json.unknown-field", f"no element {key!r} here", here)
        if slot.many:
            items = _list(value, here)
            setattr(
                node, slot.field, [_slot_value(slot, v, f"{here}/{i}") for i, v in enumerate(items)]
            )
        else:
            setattr(node, slot.field, _slot_value(slot, value, here))
    node.extra = [_raw(x, f"{pointer}/#extra") for x in _list(data.get("#extra", []), pointer)]
    if "#text" in data:
        node.text = _text(data["#text"], f"{pointer}/#text")
    for key in data:
        if key.startswith("#") and key not in ("#extra", "#order", "#text"):
            raise _fail("json.unknown-field", f"no field {key!r} here", f"{pointer}/{key}")
    if "#order" in data:
        node.order = _order(node, _list(data["#order"], f"{pointer}/#order"), f"{pointer}/#order")
    return node


def _order(node: Node, names: list[Any], pointer: str) -> list[str]:
    """``#order`` must name exactly what the object holds, or it is refused."""
    spec = binding(node.TYPE)
    order = []
    for i, name in enumerate(names):
        text = _text(name, f"{pointer}/{i}")
        if text == "#extra":
            order.append(text)
            continue
        slot = spec.by_local.get(text)
        if slot is None:
            raise _fail(
                "json.order", f"#order names {text!r}, which is not an element here", pointer
            )
        order.append(slot.field)
    if sorted(order) != sorted(canonical_order(node)):
        raise _fail("json.order", "#order does not list exactly the elements present", pointer)
    return order


def from_json(data: Any) -> Node:
    if not isinstance(data, dict) or set(data) != {ROOT_KEY}:
        raise _fail("json.type", f'expected {{"{ROOT_KEY}": {{...}}}}', "")
    return from_json_node(ROOT_TYPE, data[ROOT_KEY], f"/{ROOT_KEY}")
