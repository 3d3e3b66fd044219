"""The valid-document fast path of the structure check never vouches for a faulty certificate."""

from __future__ import annotations

import pytest
from hypothesis import given
from lxml import etree

from greenlane.sps.structure import _certainly_valid, _Walk
from tests.conftest import CORPUS
from tests.strategies import mutated_certificates

CORPUS_FILES = sorted(p for p in (CORPUS / "ephyto").rglob("*") if p.is_file())


def _walk_findings(root: etree._Element) -> list[str]:
    walk = _Walk()
    walk.run(root)
    return [f.code for f in walk.findings]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_the_fast_path_takes_exactly_the_valid_corpus_certificates(path: object) -> None:
    """Every real certificate the full walk finds nothing in is proven valid by the fast path."""
    assert isinstance(path, type(CORPUS))
    root = etree.fromstring(path.read_bytes())
    assert _certainly_valid(root) == (not _walk_findings(root))


@given(mutated_certificates(max_mutations=3))
def test_the_fast_path_never_vouches_for_a_mutant_the_walk_faults(data: bytes) -> None:
    """Whatever the mutation, a certificate the fast path accepts has no finding at all."""
    root = etree.fromstring(data)
    if _certainly_valid(root):
        assert _walk_findings(root) == []


def test_a_comment_inside_a_value_or_text_in_element_content_is_left_to_the_walk() -> None:
    """The counting and text shortcuts give up exactly where the walk has something to say."""
    source = next(p for p in CORPUS_FILES if p.name == "SPSCertificate.xml").read_bytes()
    root = etree.fromstring(source)
    leaf = next(e for e in root.iter() if isinstance(e.tag, str) and len(e) == 0)
    leaf.append(etree.Comment("inside a value"))
    assert not _certainly_valid(root)
    assert _walk_findings(root) == []  # the value is the text around the comment
    root = etree.fromstring(source)
    root[0].text = "stray text"
    assert not _certainly_valid(root)
    assert _walk_findings(root) == ["structure.text"]
