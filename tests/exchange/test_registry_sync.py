"""Partner key changes travel as root-signed registry updates and are applied in order."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from greenlane.errors import GreenlaneError
from greenlane.exchange.registry_sync import sync_partner
from greenlane.store.models import Country
from greenlane.trust import lifecycle, registry
from greenlane.trust.keys import KeyState
from greenlane.trust.messages import sign_message, verify_message
from greenlane.trust.registry import DatabaseKeys
from tests.exchange import harness


def _rotate_az_node(made: harness.Scaffold) -> str:
    """Stage both steps of a rotation of az-node's key at AZ; the new key id."""
    az = harness.context(made, "az-node")
    key_dir = made.nodes["az-node"] / "keys"
    root = lifecycle.load_root_ca(*lifecycle.root_paths(key_dir, "AZ"), None)
    with az.sessions() as session, session.begin():
        new = lifecycle.rotate(session, "az-node", root, az.provider, az.clock())
        lifecycle.activate(session, "az-node", root, az.clock())
        return new.key_id


def test_a_rotation_at_az_reaches_ru_and_verifies_there(tmp_path: Path) -> None:
    """After RU fetches AZ's updates, a message signed with AZ's new node key verifies at RU."""
    made = harness.scaffold(tmp_path / "corridor")
    new_key = _rotate_az_node(made)
    az, ru = harness.context(made, "az-node"), harness.context(made, "ru-node")
    with az.sessions() as session:
        signer = az.signer(session, "az-node")
    token = sign_message(
        signer, sender="az-node", message_id="m-1", body=b"x", attempt_at=az.clock()
    )
    with ru.sessions() as session, pytest.raises(GreenlaneError) as before:
        verify_message(token, b"x", keys=DatabaseKeys(session), recorded_at=ru.clock())
    assert before.value.code == "message.unknown-key"
    with harness.serve(az, background=False), httpx.Client(trust_env=False) as client:
        applied = sync_partner(ru, client, "az-node")
        assert sync_partner(ru, client, "az-node") == 0  # nothing new the second time
    assert applied == 2  # publish, then activate
    with ru.sessions() as session:
        verified = verify_message(token, b"x", keys=DatabaseKeys(session), recorded_at=ru.clock())
        assert verified.key_id == new_key
        states = {k.key_id: k.state for k in registry.keys(session, owner="az-node")}
        row = session.get(Country, "AZ")
        assert row is not None
    assert states[new_key] == KeyState.ACTIVE.value
    assert sorted(states.values()) == [KeyState.ACTIVE.value, KeyState.RETIRED.value]
    assert row.registry_sequence == 3  # init, publish, activate
