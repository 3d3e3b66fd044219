"""The finding factory gives exactly the Finding its code's registry entry describes."""

from __future__ import annotations

from greenlane.codes import CODES, finding
from greenlane.findings import Finding


def test_finding_matches_the_registry_for_every_code() -> None:
    """finding() builds through tuple.__new__; the result equals the plain constructor's."""
    for code, entry in CODES.items():
        made = finding(code, "a message", "/rsm:SPSCertificate")
        assert type(made) is Finding
        assert made == Finding(entry.level, entry.area, "/rsm:SPSCertificate", code, "a message")
        assert made.to_dict()["level"] == entry.level.value
