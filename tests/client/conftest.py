"""Two real nodes on loopback for the client tests, served once for the whole package."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from greenlane.client import GreenlaneClient
from greenlane.corridor.scaffold import Scaffold
from tests.exchange import harness

FAST = {"webhook_interval_seconds": 0.1, "delivery_backoff_seconds": 0.05}


@dataclass
class Nodes:
    made: Scaffold
    az: harness.RunningNode
    ru: harness.RunningNode

    def client(self, agency: str, **options: Any) -> GreenlaneClient:
        """A client of ``agency`` at its own node."""
        for node in (self.az, self.ru):
            tokens = self.made.tokens(node.ctx.node_id)
            if agency in tokens:
                return GreenlaneClient(node.url, tokens[agency], **options)
        raise KeyError(agency)


@pytest.fixture(scope="package")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """The example corridor's AZ and RU nodes with their background loops, retries kept short."""
    made = harness.scaffold(tmp_path_factory.mktemp("client-corridor"))
    with (
        harness.serve(harness.context(made, "az-node", **FAST)) as az,
        harness.serve(harness.context(made, "ru-node", **FAST)) as ru,
    ):
        yield Nodes(made, az, ru)
