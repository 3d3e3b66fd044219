"""Where full validation spends its time: each part on the same documents, CPU time per document.

For development (``python -m bench.parts [COUNT]``); ``make bench`` is the measurement of record.
The parts are interleaved over several rounds and the best round kept, as this machine is noisy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import timedelta

from lxml import etree

from bench.corpus import CORPUS, distinct_certificates
from greenlane.safexml import XmlLimits, parse_bytes
from greenlane.settings import Settings
from greenlane.sps.rules import check_rules
from greenlane.sps.structure import check_structure
from greenlane.validation import validate_bytes

ROUNDS = 7


def main() -> None:
    documents = distinct_certificates(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    settings = Settings()
    limits = XmlLimits.from_settings(settings)
    skew = timedelta(seconds=settings.sps_clock_skew_seconds)
    schema = etree.XMLSchema(
        etree.parse(str(CORPUS / "schemas/sps/data/standard/SPSCertificate_17p0.xsd"))
    )
    parts: dict[str, Callable[[bytes], object]] = {
        "bare parse + XSD": lambda d: schema.validate(etree.fromstring(d)),
        "parse": lambda d: parse_bytes(d, limits),
        "parse + structure": lambda d: check_structure(parse_bytes(d, limits).root),
        "parse + rules": lambda d: check_rules(parse_bytes(d, limits).root, clock_skew=skew),
        "validate_bytes": lambda d: validate_bytes(d, "bench", settings),
    }
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, part in parts.items():
            started = time.process_time()
            for document in documents:
                part(document)
            spent = (time.process_time() - started) / len(documents) * 1e6
            best[name] = min(best.get(name, spent), spent)
    for name, spent in best.items():
        print(f"{name:20s} {spent:7.1f} µs")
    print(f"{'structure':20s} {best['parse + structure'] - best['parse']:7.1f} µs")
    print(f"{'rules':20s} {best['parse + rules'] - best['parse']:7.1f} µs")
    print(f"ratio {best['bare parse + XSD'] / best['validate_bytes']:.3f} (target 0.5)")


if __name__ == "__main__":
    main()
