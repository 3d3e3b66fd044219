"""The documentation lists every setting and every code, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from greenlane.codes import CODES, ERRORS
from greenlane.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    """docs/configuration.md has a row for each setting and none for a removed one."""
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(GREENLANE_[A-Z0-9_]+)`", text, re.MULTILINE))
    declared = {f"GREENLANE_{name.upper()}" for name in Settings.model_fields}
    assert documented == declared


def test_every_code_is_documented() -> None:
    """docs/codes.md lists each stable code with its area and level."""
    text = (DOCS / "codes.md").read_text()
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `([a-z0-9.-]+)` \| (\w+) \| (\w+) \|", text, re.MULTILINE)
    }
    declared = {code: (c.area.value, c.level.value) for code, c in CODES.items()}
    assert {k: v for k, v in rows.items() if k in declared} == declared
    assert set(rows) == set(declared)


def test_every_error_code_is_documented() -> None:
    """docs/codes.md lists each code of an error that stops a command."""
    text = (DOCS / "codes.md").read_text()
    rows = set(re.findall(r"^\| `([a-z0-9.-]+)` \| [^|]+ \|$", text, re.MULTILINE))
    assert rows == set(ERRORS)


def test_every_code_raised_in_the_source_is_registered() -> None:
    """A ``code="..."`` written anywhere in the package is a registered finding or error code."""
    source = Path(__file__).resolve().parents[1] / "src" / "greenlane"
    used = {
        code
        for path in source.rglob("*.py")
        for code in re.findall(r'\bcode="([a-z0-9.-]+)"', path.read_text())
    }
    assert used - set(CODES) - set(ERRORS) == set()
