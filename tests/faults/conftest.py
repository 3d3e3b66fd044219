"""The fault tests' marker: ``-m faults`` runs only them, ``-m "not faults"`` skips them."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: kills real node processes or injects network faults (slow: tens of seconds)",
    )
