"""The packaged code lists: rebuilt byte for byte from the corpus, attributed, and loadable."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from greenlane.sps import codelists

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "src" / "greenlane" / "data"
HAND_WRITTEN = {"__init__.py", "ATTRIBUTION.md"}


@pytest.fixture(scope="module")
def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_codelists", REPO / "tools" / "build_codelists.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuild_is_byte_identical(build_script: ModuleType, corpus: Path, tmp_path: Path) -> None:
    """Building the lists again from the corpus gives exactly the committed files."""
    written = build_script.build(corpus, tmp_path)
    assert sorted(p.name for p in written) == sorted(build_script.OUTPUTS)
    for path in written:
        assert path.read_bytes() == (DATA / path.name).read_bytes(), path.name


def test_data_folder_holds_only_built_and_hand_written_files(build_script: ModuleType) -> None:
    """Nothing in the data folder escapes the build (or the rebuild test)."""
    present = {p.name for p in DATA.iterdir() if p.is_file()}
    assert present == set(build_script.OUTPUTS) | HAND_WRITTEN


def test_attribution_names_every_file(build_script: ModuleType) -> None:
    """ATTRIBUTION.md has a row for every generated file."""
    text = (DATA / "ATTRIBUTION.md").read_text()
    for name in build_script.OUTPUTS:
        assert f"`{name}`" in text


def test_the_lists_hold_what_the_sources_say() -> None:
    """Counts and sample entries match the corpus's own figures (SOURCES.md) and the XSDs."""
    assert len(codelists.countries()) == 249
    assert codelists.countries()["BO"] == "Bolivia (Plurinational State of)"
    # SOURCES.md counts 5,613 / 1,229 / 97 with Comtrade's 999999 / 9999 / 99, left out here.
    assert len(codelists.hs_subheadings()) == 5612
    assert len(codelists.hs_headings()) == 1228
    assert len(codelists.hs_chapters()) == 96
    assert "999999" not in codelists.hs_subheadings()
    assert {"100590", "060290"} <= codelists.hs_subheadings()
    assert codelists.unlocode_countries() == {
        "AM", "AZ", "BY", "CN", "GE", "IR", "KZ", "RU", "TR", "UZ"
    }  # fmt: skip
    assert codelists.unlocodes()["AZBAK"].name == "Baku"
    assert codelists.unlocodes()["CNANX"].name == "Anxi, Quanzhou"  # mended from a broken row
    assert {"KGM", "TNE", "MTQ", "CEL", "HUR"} <= codelists.units()
    assert codelists.unit_categories()["KGM"] == "weight"
    assert dict(codelists.document_types()) == {
        "851": "Phytosanitary certificate",
        "657": "Phytosanitary Re-export Certificate",
        "852": "Sanitary certificate",
        "853": "Veterinary certificate",
    }
    assert dict(codelists.status_codes()) == {
        "70": "Issued",
        "40": "Withdrawn",
        "39": "Approved",
        "41": "Rejected",
    }


def test_ippc_subjects_are_what_the_xsd_gives() -> None:
    """The tag acronyms split into notes, treatments and classifications, with no length limits."""
    subjects = codelists.ippc_subjects()
    assert len(subjects) == 43
    kinds = {
        kind: {c for c, s in subjects.items() if s.kind == kind}
        for kind in ("treatment", "classification")
    }
    assert kinds["treatment"] == {"TTL1", "TTL2", "TTCH", "TTTM", "TTCO", "TTAI", "TTFT"}
    assert kinds["classification"] == {"HS", "IPPCPCVP", "IPPCPCC"}
    assert len(codelists.note_subjects()) == 33
    # The XSD documents no length or type; types are read from the descriptions' wording.
    assert all(spec.max_length is None for spec in subjects.values())
    dated = {c for c, s in subjects.items() if s.value_type == "date"}
    assert dated == {"ADDI", "ADDIEDL", "ADDITLIL", "ADRD"}
    assert subjects["OQV"].value_type == "number"
    assert subjects["ADDITLIL"].level == "line"
    assert subjects["ADDIEDL"].level == "document"


def test_loaders_are_cached() -> None:
    """Each list is read once: a second call returns the very same object."""
    assert codelists.countries() is codelists.countries()
    assert codelists.hs_subheadings() is codelists.hs_subheadings()
    assert codelists.ippc_subjects() is codelists.ippc_subjects()
