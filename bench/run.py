"""``make bench``: measure, write bench/results.json, and refresh the table in docs/performance.md.

Each measurement runs beside its bare-library baseline on the same bytes in the
same run, so the ratio means something on any machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree

from bench import exchange, trust
from bench.corpus import CORPUS, REPO, corpus_documents, distinct_certificates
from greenlane.safexml import parse_bytes
from greenlane.settings import Settings
from greenlane.validation import validate_bytes

RESULTS = REPO / "bench" / "results.json"
DOC = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PROFILE_BEGIN, PROFILE_END = "<!-- bench:profile:begin -->", "<!-- bench:profile:end -->"
ROUNDS = 5
TARGET_SECONDS = 1.0


DISTINCT = 10_000


def _rate(fn: Callable[[bytes], object], documents: list[bytes]) -> float:
    """Documents per second: the median of several rounds of about a second each."""
    fn(documents[0])
    rates = []
    for _ in range(ROUNDS):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < TARGET_SECONDS:
            for document in documents:
                fn(document)
            count += len(documents)
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def _bare_parse(data: bytes) -> object:
    return etree.fromstring(data)


def _one_pass_rate(fn: Callable[[bytes], object], documents: list[bytes]) -> float:
    """Documents per second over one pass of all ``documents``: the median of three passes."""
    fn(documents[0])
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        for document in documents:
            fn(document)
        rates.append(len(documents) / (time.perf_counter() - started))
    return statistics.median(rates)


def _validation(documents: list[bytes]) -> dict[str, object]:
    """Full validation (reader, structure, rules) against bare lxml parse + official XSD."""
    schema = etree.XMLSchema(
        etree.parse(str(CORPUS / "schemas/sps/data/standard/SPSCertificate_17p0.xsd"))
    )
    settings = Settings()

    def bare(data: bytes) -> object:
        return schema.validate(etree.fromstring(data))

    def full(data: bytes) -> object:
        result = validate_bytes(data, "bench", settings)
        assert result.valid, result.findings
        return result

    bare_rate = _one_pass_rate(bare, documents)
    full_rate = _one_pass_rate(full, documents)
    return {
        "name": f"certificates parsed and fully validated (structure + rules), "
        f"{len(documents):,} distinct",
        "unit": "documents/s",
        "value": round(full_rate),
        "baseline": "bare lxml parse + official XSD validation, same bytes",
        "baseline_value": round(bare_rate),
        "ratio": round(full_rate / bare_rate, 3),
        "target_ratio": 0.5,
    }


def measure() -> dict[str, object]:
    load_before = os.getloadavg()[0]
    documents = corpus_documents()
    bare = _rate(_bare_parse, documents)
    hardened = _rate(parse_bytes, documents)
    validation = _validation(distinct_certificates(DISTINCT))
    signatures = trust.measure()
    exchanged = exchange.run()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "lxml": ".".join(map(str, etree.LXML_VERSION)),
        "libxml2": ".".join(map(str, etree.LIBXML_VERSION)),
        "corpus_documents": len(documents),
        "results": [
            {
                "name": "hardened XML reader (parse + limits + DOCTYPE refusal)",
                "unit": "documents/s",
                "value": round(hardened),
                "baseline": "bare lxml etree.fromstring, same bytes",
                "baseline_value": round(bare),
                "ratio": round(hardened / bare, 3),
            },
            validation,
            *signatures,
            *exchange.results(exchanged),
        ],
        "exchange": exchanged,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _table(run: dict[str, object]) -> str:
    lines = [
        f"Measured {run['when']} on {run['machine']} (lxml {run['lxml']}, "
        f"libxml2 {run['libxml2']}), peak RSS {run['peak_rss_mb']} MB, load average "
        f"{' then '.join(map(str, run.get('load_average', [])))} (start, end): a shared "
        "machine gives lower and noisier rates.",
        "",
        "| measurement | value | baseline | baseline value | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    results = run["results"]
    assert isinstance(results, list)
    for r in results:
        baseline = (
            f"{r['baseline_value']:,} {r['unit']}" if r.get("baseline_value") is not None else ""
        )
        value = f"{r['value']:,} {r['unit']}" if isinstance(r["value"], int | float) else r["value"]
        lines.append(
            f"| {r['name']} | {value} | {r.get('baseline', '')} | "
            f"{baseline} | {r.get('ratio', '')} | {r.get('target', r.get('target_ratio', ''))} |"
        )
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with what stands between the markers ``begin`` and ``end`` replaced by ``block``."""
    if begin not in text:
        return text
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def main() -> None:
    run = measure()
    RESULTS.write_text(json.dumps(run, indent=2) + "\n")
    exchanged = run["exchange"]
    assert isinstance(exchanged, dict)
    text = _replace(DOC.read_text(), BEGIN, END, _table(run))
    DOC.write_text(_replace(text, PROFILE_BEGIN, PROFILE_END, exchange.profile_table(exchanged)))
    print(_table(run))
    print(exchange.profile_table(exchanged))


if __name__ == "__main__":
    main()
