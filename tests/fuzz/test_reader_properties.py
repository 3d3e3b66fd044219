"""Properties of the hardened reader over arbitrary and damaged input.

``make fuzz`` runs these with many more examples (HYPOTHESIS_PROFILE=fuzz).
"""

from __future__ import annotations

from hypothesis import given

from greenlane.errors import DocumentRefused
from greenlane.safexml import parse_bytes
from tests.strategies import any_bytes, mutated_corpus_bytes


def _read_or_refuse(data: bytes) -> None:
    refusal: DocumentRefused | None = None
    try:
        document = parse_bytes(data)
    except DocumentRefused as refused:
        refusal = refused
    if refusal is None:
        assert document.raw == data
    else:
        assert refusal.code.startswith("xml.")
        assert refusal.finding.level.value == "error"


@given(any_bytes())
def test_arbitrary_bytes_are_read_or_refused_with_a_code(data: bytes) -> None:
    """Whatever the bytes, the reader returns a document or a coded refusal, never a crash."""
    _read_or_refuse(data)


@given(mutated_corpus_bytes())
def test_damaged_certificates_are_read_or_refused_with_a_code(data: bytes) -> None:
    """A real certificate damaged anywhere is read exactly or refused with an xml.* code."""
    _read_or_refuse(data)
