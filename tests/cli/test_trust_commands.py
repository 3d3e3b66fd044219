"""``greenlane participants``, ``keys`` and ``evidence`` as an operator runs them."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli.run import Run, greenlane
from tests.trust.corridors import write_corridor


@pytest.fixture
def node(tmp_path: Path) -> dict[str, str]:
    """The environment of an AZ node on a fresh SQLite database, with the corridor file."""
    corridor = write_corridor(tmp_path)
    env = {
        "GREENLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'node.db'}",
        "GREENLANE_CORRIDOR_FILE": str(corridor),
        "GREENLANE_KEY_DIR": str(tmp_path / "keys"),
        "GREENLANE_KEY_PASSPHRASE": "correct horse battery staple",
        "GREENLANE_NODE_ID": "az-node",
    }
    assert greenlane("db", "upgrade", env=env).status == 0
    return env


def _ok(run: Run) -> Run:
    assert run.status == 0, run.stderr
    return run


def test_participants_load_list_show_and_add(node: dict[str, str]) -> None:
    """The corridor file fills the registry; one more agency can be added by hand."""
    assert (
        "2 countries, 4 agencies, 2 nodes"
        in _ok(greenlane("participants", "load", env=node)).stdout
    )
    listed = json.loads(_ok(greenlane("participants", "list", "--json", env=node)).stdout)
    assert {p["id"] for p in listed} == {
        "az-fsa",
        "az-customs",
        "az-node",
        "ru-rsn",
        "ru-fcs",
        "ru-node",
    }
    added = greenlane(
        "participants",
        "add",
        "az-vet",
        "--country",
        "AZ",
        "--name",
        "Veterinary Service",
        "--role",
        "veterinary",
        env=node,
    )
    _ok(added)
    shown = json.loads(_ok(greenlane("participants", "show", "az-vet", "--json", env=node)).stdout)
    assert shown["roles"] == ["veterinary"]
    assert shown["keys"] == []
    again = greenlane(
        "participants",
        "add",
        "az-vet",
        "--country",
        "AZ",
        "--name",
        "x",
        "--role",
        "nppo",
        env=node,
    )
    assert again.status == 2
    assert "trust.participant-exists" in again.stderr
    bad = greenlane(
        "participants",
        "add",
        "az-x",
        "--country",
        "AZ",
        "--name",
        "x",
        "--role",
        "police",
        env=node,
    )
    assert bad.status == 2
    assert "trust.participant-invalid" in bad.stderr


def test_keys_init_rotate_and_revoke(node: dict[str, str], tmp_path: Path) -> None:
    """init makes the root (with a loud warning) and a key each; rotation takes two steps."""
    init = _ok(greenlane("keys", "init", "--country", "AZ", env=node))
    assert "root CA key is a file on this node" in init.stderr
    assert (tmp_path / "pki" / "AZ-root.pem").is_file()  # for the partner's corridor file
    keys = json.loads(_ok(greenlane("keys", "list", "--country", "AZ", "--json", env=node)).stdout)
    assert sorted(k["owner"] for k in keys) == ["az-customs", "az-fsa", "az-node"]
    assert {k["state"] for k in keys} == {"active"}

    rotated = _ok(greenlane("keys", "rotate", "az-node", env=node))
    assert "--activate" in rotated.stdout
    _ok(greenlane("keys", "rotate", "az-node", "--activate", env=node))
    states = sorted(
        k["state"]
        for k in json.loads(_ok(greenlane("keys", "list", "--json", env=node)).stdout)
        if k["owner"] == "az-node"
    )
    assert states == ["active", "retired"]

    active = next(
        k["key_id"]
        for k in json.loads(_ok(greenlane("keys", "list", "--json", env=node)).stdout)
        if k["owner"] == "az-fsa"
    )
    _ok(greenlane("keys", "revoke", active[:12], "--reason", "laptop stolen", env=node))
    states = {
        k["key_id"]: k["state"]
        for k in json.loads(greenlane("keys", "list", "--json", env=node).stdout)
    }
    assert states[active] == "revoked"
    nothing = greenlane("keys", "rotate", "az-node", "--activate", env=node)
    assert nothing.status == 2
    assert "trust.key-state" in nothing.stderr


def test_production_does_not_make_a_root_ca_on_the_node(node: dict[str, str]) -> None:
    env = node | {"GREENLANE_PROFILE": "production", "GREENLANE_SECRET_KEY": "x" * 40}
    run = greenlane("keys", "init", "--country", "AZ", env=env)
    assert run.status == 2
    assert "config.unsafe-in-production" in run.stderr


def test_evidence_verify_finds_a_row_edited_with_plain_sql(
    node: dict[str, str], tmp_path: Path
) -> None:
    """Key changes are logged; the log verifies; one row edited in SQL is named."""
    _ok(greenlane("keys", "init", "--country", "AZ", env=node))
    _ok(greenlane("keys", "rotate", "az-node", env=node))
    _ok(greenlane("keys", "rotate", "az-node", "--activate", env=node))
    report = json.loads(_ok(greenlane("evidence", "verify", "--json", env=node)).stdout)
    assert report["ok"] is True
    assert report["size"] >= 3
    database = sqlite3.connect(tmp_path / "node.db")
    with database:
        database.execute("DROP TRIGGER evidence_no_update")
        database.execute(
            "UPDATE evidence_entries SET body = REPLACE(body, 'publish', 'revoke') WHERE seq = 1"
        )
    database.close()
    broken = greenlane("evidence", "verify", env=node)
    assert broken.status == 1
    assert "first broken entry: 1" in broken.stderr
    assert "evidence.entry-modified" in broken.stderr


def test_verify_the_real_intercom_certificate(corpus: Path, tmp_path: Path) -> None:
    """Intact (digest and RSA-SHA256 verify) but not trusted, for the three reasons; exit 1."""
    path = corpus / "ephyto/intercom/SPSCertificate-signed.xml"
    run = greenlane("verify", "--json", str(path), cwd=tmp_path)
    assert run.status == 1
    (verdict,) = json.loads(run.stdout)
    assert verdict["intact"] is True
    assert verdict["trusted"] is False
    assert verdict["signer"]["name"] == "Agrocalidad Ecuador"
    assert verdict["algorithm"] == "rsa-sha256"
    assert verdict["certificate_valid_from"].startswith("2024-08-19")
    assert verdict["certificate_valid_to"].startswith("2025-08-19")
    codes = [f["code"] for f in verdict["findings"]]
    assert codes == [
        "policy.unknown-key",
        "policy.certificate-not-valid",
        "policy.country-mismatch",
    ]

    changed = tmp_path / "changed.xml"
    changed.write_bytes(path.read_bytes().replace(b"Lot number:8888", b"Lot number:8889", 1))
    (broken,) = json.loads(greenlane("verify", "--json", str(changed), cwd=tmp_path).stdout)
    assert broken["intact"] is False
    assert "signature.digest-mismatch" in [f["code"] for f in broken["findings"]]


def test_verify_trusts_a_pinned_signer(corpus: Path, tmp_path: Path) -> None:
    """With --trust naming the signer's certificate, a document we signed verifies: exit 0."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from greenlane.trust import pki
    from greenlane.trust.keys import OwnerKind
    from greenlane.trust.signers import SoftwareSigner
    from greenlane.trust.xmldsig import sign_enveloped

    issued = datetime(2024, 1, 1, tzinfo=UTC)  # before the certificate's IssueDateTime
    root_key = pki.generate_key()
    root = pki.create_root("CO", "ICA", root_key, now=issued)
    private = pki.generate_key()
    owner = pki.Owner("CO", OwnerKind.AGENCY, "co-ica", "ICA")
    certificate = pki.issue(root_key, root, private.public_key(), owner, now=issued)
    signed = sign_enveloped(
        (corpus / "ephyto/intercom/SPSCertificate.xml").read_bytes(),
        SoftwareSigner.from_key(private, certificate),
    )
    document, pinned = tmp_path / "signed.xml", tmp_path / "trusted.pem"
    document.write_bytes(signed)
    pinned.write_bytes(certificate.public_bytes(Encoding.PEM))
    run = greenlane("verify", "--trust", str(pinned), str(document), cwd=tmp_path)
    assert run.status == 0, run.stdout + run.stderr
    assert "trusted" in run.stdout
