"""Every check of an SPS certificate, in one call: structure, rules, and the XSD if configured."""

from __future__ import annotations

from datetime import timedelta

from greenlane.findings import Finding
from greenlane.safexml import XmlDocument
from greenlane.settings import Settings
from greenlane.sps.rules import check_rules
from greenlane.sps.structure import check_structure
from greenlane.sps.xsd import check_schema


def check_certificate(document: XmlDocument, settings: Settings) -> list[Finding]:
    findings = check_structure(document.root)
    if settings.sps_schema_dir is not None:
        findings.extend(check_schema(document.root, settings.sps_schema_dir))
    findings.extend(
        check_rules(document.root, clock_skew=timedelta(seconds=settings.sps_clock_skew_seconds))
    )
    return findings
