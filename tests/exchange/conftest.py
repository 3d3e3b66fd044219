"""Fixtures for tests that need the two real nodes of the example corridor running on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from greenlane.corridor.scaffold import Mode, Scaffold
from tests.exchange import harness


@dataclass
class Pair:
    """The AZ and RU nodes of a scaffolded corridor, both serving with their background loops."""

    made: Scaffold
    az: harness.RunningNode
    ru: harness.RunningNode
    clients: list[httpx.Client] = field(default_factory=list)

    def node(self, node_id: str) -> harness.RunningNode:
        return {"az-node": self.az, "ru-node": self.ru}[node_id]

    def agency(self, agency_id: str) -> httpx.Client:
        """An API client of the agency (az-fsa, az-customs, ru-rsn, ru-fcs) at its own node.

        Closed when the pair stops.
        """
        for node_id in ("az-node", "ru-node"):
            tokens = self.made.tokens(node_id)
            if agency_id in tokens:
                client = self.node(node_id).client(tokens[agency_id])
                self.clients.append(client)
                return client
        raise KeyError(f"no agency {agency_id} in the corridor")


@contextmanager
def running_pair(directory: Path, delivery: tuple[Mode, Mode] = ("push", "push")) -> Iterator[Pair]:
    """Scaffold a corridor into ``directory`` and serve both nodes until the block ends."""
    made = harness.scaffold(directory, delivery=delivery)
    with (
        harness.serve(harness.context(made, "az-node")) as az,
        harness.serve(harness.context(made, "ru-node")) as ru,
    ):
        running = Pair(made, az, ru)
        try:
            yield running
        finally:
            for client in running.clients:
                client.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """A fresh corridor of two push nodes for one test."""
    with running_pair(tmp_path / "corridor") as running:
        yield running
