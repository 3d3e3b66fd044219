"""Judge documents of any kind greenlane reads, with findings; one path for CLI and API.

The hardened reader runs first; the root element then picks the document kind
and its checks. A kind registers a :class:`DocumentKind` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from greenlane.codes import finding
from greenlane.errors import DocumentRefused
from greenlane.findings import Finding, has_errors
from greenlane.safexml import XmlDocument, XmlLimits, parse_bytes, parse_file
from greenlane.settings import Settings
from greenlane.sps import identity as sps


@dataclass(frozen=True, slots=True)
class DocumentKind:
    name: str
    root: etree.QName
    number: Callable[[etree._Element], str | None]
    check: Callable[[XmlDocument, Settings], list[Finding]]


def _check_sps(document: XmlDocument, settings: Settings) -> list[Finding]:
    from greenlane.sps.checks import check_certificate  # the tables load on first use

    return check_certificate(document, settings)


KINDS: dict[str, DocumentKind] = {
    sps.ROOT.text: DocumentKind(
        name="SPSCertificate",
        root=sps.ROOT,
        number=sps.certificate_number,
        check=_check_sps,
    ),
}


@dataclass(slots=True)
class ValidationResult:
    """The verdict on one input: the JSON object every judging command prints."""

    path: str
    document_type: str | None = None
    id: str | None = None
    findings: list[Finding] = field(default_factory=list)
    unreadable: bool = False
    document: XmlDocument | None = None

    @property
    def valid(self) -> bool:
        return not self.unreadable and not has_errors(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "valid": self.valid,
            "document_type": self.document_type,
            "id": self.id,
            "findings": [f.to_dict() for f in self.findings],
        }


def judge(document: XmlDocument, result: ValidationResult, settings: Settings) -> ValidationResult:
    tag = str(document.root.tag)  # a root is always an element: its tag is already a str
    kind = KINDS.get(tag)
    result.document = document
    if kind is None:
        expected = ", ".join(sorted(KINDS))
        result.findings.append(
            finding(
                "xml.unknown-root",
                f"root element {tag} is not a document greenlane reads (expected {expected})",
                "/*",
            )
        )
        return result
    result.document_type = kind.name
    result.id = kind.number(document.root)
    result.findings.extend(kind.check(document, settings))
    return result


def validate_bytes(data: bytes, name: str, settings: Settings) -> ValidationResult:
    result = ValidationResult(path=name)
    try:
        document = parse_bytes(data, XmlLimits.from_settings(settings))
    except DocumentRefused as refused:
        result.findings.append(refused.finding)
        return result
    return judge(document, result, settings)


def validate_path(path: Path, settings: Settings) -> ValidationResult:
    """Validate one file; a file that cannot be opened is reported, not raised."""
    result = ValidationResult(path=str(path))
    try:
        document = parse_file(path, XmlLimits.from_settings(settings))
    except DocumentRefused as refused:
        result.findings.append(refused.finding)
        return result
    except FileNotFoundError:
        result.unreadable = True
        result.findings.append(finding("input.not-found", f"{path}: no such file"))
        return result
    except OSError as exc:
        result.unreadable = True
        reason = exc.strerror or type(exc).__name__
        result.findings.append(finding("input.unreadable", f"{path}: {reason}"))
        return result
    return judge(document, result, settings)
