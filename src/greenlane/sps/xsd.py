"""Optional second opinion: the official SPS XSD, run by lxml, when the operator provides it.

``GREENLANE_SPS_SCHEMA_DIR`` names a directory holding the UN/CEFACT schema set
(``data/standard/SPSCertificate_17p0.xsd`` inside it). The product ships no XSD
and never needs one (:mod:`greenlane.sps.structure` agrees with it on its own);
this exists for operators who want the official verdict beside ours. The schema
is loaded once per directory and cached; each XSD error becomes a
``schema.invalid`` finding whose path points at the element libxml2 names.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from lxml import etree

from greenlane.codes import finding
from greenlane.errors import ConfigurationError
from greenlane.findings import Finding
from greenlane.sps.structure import element_path

ENTRY = Path("data/standard/SPSCertificate_17p0.xsd")
_lock = threading.Lock()


@lru_cache(maxsize=4)
def load_schema(schema_dir: Path) -> etree.XMLSchema:
    """The XSD of ``schema_dir``, parsed once; its imports resolve to files, never the network."""
    entry = schema_dir / ENTRY
    if not entry.is_file():
        raise ConfigurationError(
            f"GREENLANE_SPS_SCHEMA_DIR={schema_dir}: no {ENTRY} there", code="config.invalid"
        )
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        return etree.XMLSchema(etree.parse(str(entry), parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ConfigurationError(
            f"GREENLANE_SPS_SCHEMA_DIR={schema_dir}: the schema does not load ({exc})",
            code="config.invalid",
        ) from None


def check_schema(root: etree._Element, schema_dir: Path | None = None) -> list[Finding]:
    """One ``schema.invalid`` finding per XSD error; none when the setting is unset."""
    if schema_dir is None:
        from greenlane.settings import load_settings

        schema_dir = load_settings().sps_schema_dir
        if schema_dir is None:
            return []
    schema = load_schema(schema_dir.resolve())
    with _lock:  # an XMLSchema object keeps its error log: one validation at a time
        valid = schema.validate(root)
        errors = [] if valid else list(schema.error_log)
    return [
        finding("schema.invalid", f"line {e.line}: {e.message}", _path(root, e.path))
        for e in errors
    ]


def _path(root: etree._Element, libxml2_path: str | None) -> str:
    """libxml2's path uses the document's prefixes; give it in ours when it resolves."""
    if not libxml2_path:
        return ""
    namespaces = {p: uri for p, uri in root.nsmap.items() if p}
    try:
        hits = root.getroottree().xpath(libxml2_path, namespaces=namespaces)
    except etree.XPathError:
        return libxml2_path
    if isinstance(hits, list) and hits and isinstance(hits[0], etree._Element):
        return element_path(hits[0])
    return libxml2_path
