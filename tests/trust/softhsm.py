"""A throw-away SoftHSM2 token store for tests that need a real PKCS#11 token.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the library is initialised, and
python-pkcs11 keeps one loaded library per process; so the store is made once
per test session (per xdist worker), with its own ``softhsm2.conf`` and token
directory under the session's temporary directory, and its tokens are all
initialised before any test loads the library.

Use the ``softhsm`` fixture (import it into a test module or a conftest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "greenlane-test-pin"
SO_PIN = "greenlane-test-so-pin"
TOKEN = "greenlane-test"
"""The token tests make keys on; tests share it, so each uses its own owner names."""
UNTOUCHED_TOKEN = "greenlane-untouched"
"""A token nothing logs in to, so a wrong PIN meets the token itself, not a cached login."""


@dataclass(frozen=True)
class SoftHsm:
    """Where the store is and how to reach its tokens."""

    conf: Path
    module: Path = MODULE
    token: str = TOKEN
    untouched_token: str = UNTOUCHED_TOKEN
    pin: str = PIN


def make_store(directory: Path, labels: tuple[str, ...] = (TOKEN, UNTOUCHED_TOKEN)) -> Path:
    """Write a softhsm2.conf with its own token directory and initialise ``labels`` in it."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    util = shutil.which("softhsm2-util")
    if util is None:
        pytest.skip("softhsm2-util is not installed")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in labels:
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    return conf


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 store with two fresh tokens, ``SOFTHSM2_CONF`` pointing at it for the session."""
    if not MODULE.is_file():
        pytest.skip(f"SoftHSM2 is not installed ({MODULE} is missing)")
    conf = make_store(tmp_path_factory.mktemp("softhsm"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        import pkcs11

        loaded = getattr(pkcs11, "_loaded", {}).get(str(MODULE))
        if loaded is not None:
            # Loaded earlier with another configuration: make SoftHSM2 read ours.
            loaded.reinitialize()
        yield SoftHsm(conf)
