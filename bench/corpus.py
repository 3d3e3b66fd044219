"""Distinct benchmark documents made from the real corpus certificates."""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("GREENLANE_SHARED_DIR", REPO.parent / "shared")) / "corpus"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
RSM = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"


def corpus_files() -> list[Path]:
    return sorted(p for p in (CORPUS / "ephyto").rglob("*") if p.is_file())


def corpus_documents() -> list[bytes]:
    return [p.read_bytes() for p in corpus_files()]


def distinct_certificates(count: int, *, schema_valid_only: bool = True) -> list[bytes]:
    """``count`` different certificates: corpus documents with a new number and weights.

    Unsigned documents only (a changed signed document is no longer what was
    signed), and by default only those the official schema accepts, so that both
    sides of the comparison do the same full work.
    """
    sources = []
    for path in corpus_files():
        if "signed" in path.name or (schema_valid_only and "mattilsynet" in str(path)):
            continue
        sources.append(etree.fromstring(path.read_bytes()))
    out: list[bytes] = []
    for i in range(count):
        tree = sources[i % len(sources)]
        number = tree.find(f"{{{RSM}}}SPSExchangedDocument/{{{RAM}}}ID")
        assert number is not None
        original = number.text
        number.text = f"BENCH-{i:06d}"
        weights = tree.findall(f".//{{{RAM}}}NetWeightMeasure")
        saved = [w.text for w in weights]
        for w in weights:
            w.text = f"{1000 + i % 9000}.{i % 100:02d}"
        out.append(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
        number.text = original
        for w, text in zip(weights, saved, strict=True):
            w.text = text
    return out
