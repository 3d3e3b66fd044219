"""The committed structure tables are exactly what the generator makes from the official XSD."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.sps.xsd_oracle import SCHEMA_DIR

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tools" / "gen_sps_tables.py"
TABLES = REPO / "src" / "greenlane" / "sps" / "tables.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sps_tables", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_sps_tables"] = module
    spec.loader.exec_module(module)
    return module


def test_regenerated_tables_are_byte_identical_to_the_committed_module(tmp_path: Path) -> None:
    """tools/gen_sps_tables.py run on the official schema set writes the committed tables.py."""
    output = tmp_path / "tables.py"
    assert _generator().main(["--schema-dir", str(SCHEMA_DIR), "--output", str(output)]) == 0
    assert output.read_bytes() == TABLES.read_bytes()


def test_tables_hold_the_root_every_reachable_type_and_only_referenced_code_lists() -> None:
    """The root, its 21-module types and the code lists they use are present; others are not."""
    from greenlane.sps import tables

    assert tables.ROOT.tag == f"{{{tables.NAMESPACES['rsm']}}}SPSCertificate"
    assert tables.ROOT.type in tables.COMPLEX_TYPES
    for ctype in tables.COMPLEX_TYPES.values():
        for particle in ctype.particles:
            assert particle.type in tables.COMPLEX_TYPES or particle.type in tables.SIMPLE_TYPES
        for attribute in ctype.attributes:
            assert attribute.type in tables.SIMPLE_TYPES
        if ctype.simple is not None:
            assert ctype.simple in tables.SIMPLE_TYPES
    document_codes = tables.SIMPLE_TYPES["clm61001:DocumentNameCodeContentType"].enumeration
    assert document_codes is not None
    assert {"851", "657"} <= document_codes
    assert not any("EDIFICAS" in uri for uri in tables.TYPE_PREFIXES.values())
