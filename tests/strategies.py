"""Hypothesis strategies, kept in one place for every property test."""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from tests.conftest import CORPUS


@cache
def corpus_documents() -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in sorted((CORPUS / "ephyto").rglob("*")) if p.is_file())


def _mutate(data: bytes, kind: str, position: int, payload: bytes) -> bytes:
    at = position % (len(data) + 1)
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + payload + data[at:]
    if kind == "overwrite":
        return data[:at] + payload + data[at + len(payload) :]
    return data[:at] + data[at + len(payload) :]  # delete


XML_FRAGMENTS = st.sampled_from(
    [
        b"<",
        b">",
        b"&",
        b"&amp;",
        b"<!DOCTYPE x>",
        b"<!ENTITY a 'b'>",
        b"]]>",
        b"<![CDATA[",
        b"\x00",
        b"\xff\xfe",
        b"xmlns:p='u'",
        b"<p:x/>",
        b"</",
        b"<?xml?>",
        b"&#0;",
        b"&#x10FFFF;",
    ]
)


def mutated_corpus_bytes() -> st.SearchStrategy[bytes]:
    """A real certificate, damaged once: truncated, or bytes inserted, overwritten, deleted."""
    return st.builds(
        _mutate,
        st.sampled_from(corpus_documents()),
        st.sampled_from(["truncate", "insert", "overwrite", "delete"]),
        st.integers(min_value=0, max_value=300_000),
        st.one_of(XML_FRAGMENTS, st.binary(min_size=1, max_size=16)),
    )


def any_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(str.encode))
