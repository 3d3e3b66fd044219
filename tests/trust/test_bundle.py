"""Evidence bundles checked offline: each part that can be altered is caught."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from greenlane.trust import pki
from greenlane.trust.bundle import verify_bundle
from tests.cli.run import greenlane
from tests.cli.test_demo import free_ports


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corridor after the demo's day, with the AZ node's bundle of the tomato certificate."""
    directory = tmp_path_factory.mktemp("demo")
    folder = directory / "corridor"
    az, ru = free_ports()
    run = greenlane("demo", "--exit", "--dir", str(folder), "--ports", f"{az},{ru}", cwd=directory)
    assert run.status == 0, run.stdout + run.stderr
    env = {"GREENLANE_SETTINGS_FILE": str(folder / "az-node" / "settings.toml")}
    output = folder / "evidence-bundle.json"
    run = greenlane("evidence", "bundle", "AZ-2026-000123", "-o", str(output), env=env)
    assert run.status == 0, run.stdout + run.stderr
    return folder


def _bundle(demo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((demo / "evidence-bundle.json").read_bytes())
    return data


def _pinned(demo: Path) -> dict[str, x509.Certificate]:
    return {
        c: x509.load_pem_x509_certificate((demo / "pki" / f"{c}-root.pem").read_bytes())
        for c in ("AZ", "RU")
    }


def _codes(bundle: dict[str, Any], pinned: dict[str, x509.Certificate] | None = None) -> set[str]:
    report = verify_bundle(json.dumps(bundle).encode(), pinned)
    return {code for code, _ in report.problems}


def test_the_demo_bundle_verifies_with_its_roots_pinned(demo: Path) -> None:
    report = verify_bundle((demo / "evidence-bundle.json").read_bytes(), _pinned(demo))
    assert report.ok, report.problems
    assert report.roots_pinned
    assert report.entries >= 1


def _flip_b64(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _document(b: dict[str, Any]) -> None:
    b["document"]["bytes"] = _flip_b64(b["document"]["bytes"])


def _entry(b: dict[str, Any]) -> None:
    body = base64.b64decode(b["entries"][0]["body"])
    altered = body.replace(b'"AZ-2026-000123"', b'"AZ-2026-000999"')
    assert altered != body
    b["entries"][0]["body"] = base64.b64encode(altered).decode()


def _proof(b: dict[str, Any]) -> None:
    proof = b["entries"][0]["proof"]
    proof[0] = ("00" if proof[0][:2] != "00" else "11") + proof[0][2:]


def _signature(b: dict[str, Any]) -> None:
    b["checkpoint"]["signature"] = _flip_b64(b["checkpoint"]["signature"])


def _countersignature(b: dict[str, Any]) -> None:
    b["checkpoint"]["countersignature"] = _flip_b64(b["checkpoint"]["countersignature"])


@pytest.mark.parametrize(
    ("alter", "code"),
    [
        (_document, "evidence.entry-modified"),
        (_entry, "evidence.history-rewritten"),
        (_proof, "evidence.history-rewritten"),
        (_signature, "evidence.bad-checkpoint"),
        (_countersignature, "evidence.bad-checkpoint"),
    ],
)
def test_each_altered_part_is_caught(
    demo: Path, alter: Callable[[dict[str, Any]], None], code: str
) -> None:
    bundle = _bundle(demo)
    alter(bundle)
    assert code in _codes(bundle)


def test_a_bundle_from_another_pki_fails_against_the_pinned_roots(demo: Path) -> None:
    """Whoever forges a whole bundle with roots of their own is caught by the pinned roots."""
    other = pki.create_root("AZ", "Forger", pki.generate_key())
    pinned = _pinned(demo) | {"AZ": other}
    assert "trust.root-mismatch" in _codes(_bundle(demo), pinned)


def test_garbage_is_refused_as_malformed() -> None:
    for data in (b"", b"[]", b'{"type": "greenlane.evidence-bundle"}', b"\xff"):
        report = verify_bundle(data)
        assert not report.ok
        assert report.problems[0][0] == "evidence.malformed"
