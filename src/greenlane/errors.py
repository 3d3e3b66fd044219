"""Errors that a user or operator can cause, each carrying a stable code.

Domain code raises these; the CLI and the HTTP API turn them into their own
output (an exit status, one JSON error shape). Nothing here knows about either.

    GreenlaneError                 code, message
     ├── ConfigurationError        config.*: settings refused at start
     ├── InputError                input.*: a file that cannot be opened
     └── DocumentRefused           xml.* and later: bytes refused before any use;
                                   carries the finding that says why
"""

from __future__ import annotations

from greenlane.findings import Finding


class GreenlaneError(Exception):
    """Base of every error with a stable code."""

    code: str = "greenlane.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigurationError(GreenlaneError):
    code = "config.invalid"


class InputError(GreenlaneError):
    code = "input.unreadable"


class DocumentRefused(GreenlaneError):
    """The hardened reader (or a later gate) refused a document outright."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message, code=finding.code)
        self.finding = finding
