"""Each node's evidence log is signed by it and countersigned by its partner over the API."""

from __future__ import annotations

from pathlib import Path

import httpx

from greenlane.exchange.checkpoints import exchange_once
from greenlane.trust.evidence import verify_log
from greenlane.trust.registry import DatabaseKeys
from tests.exchange import harness


def _report(ctx: harness.NodeContext) -> tuple[bool, int, int]:
    with ctx.sessions() as session:
        report = verify_log(session, ctx.node_id, DatabaseKeys(session))
    return report.ok, report.checkpoints, report.countersigned


def test_both_logs_are_countersigned_and_a_grown_log_again_with_a_consistency_proof(
    tmp_path: Path,
) -> None:
    """A first and a second (grown) checkpoint of each log end countersigned and verified."""
    made = harness.scaffold(tmp_path / "corridor")
    az, ru = harness.context(made, "az-node"), harness.context(made, "ru-node")
    token = made.tokens("az-node")["az-fsa"]
    with (
        harness.serve(ru, background=False),
        harness.serve(az, background=False) as az_node,
        httpx.Client(trust_env=False) as client,
    ):
        assert exchange_once(az, client) == 1
        assert exchange_once(ru, client) == 1
        assert exchange_once(az, client) == 0  # nothing new to sign
        with az_node.client(token) as agency:
            response = agency.post(
                "/api/v1/certificates",
                content=harness.certificate_xml("AZ-2026-880001"),
                headers={"Content-Type": "application/xml"},
            )
            assert response.status_code == 201, response.text
        assert exchange_once(az, client) == 1  # grown: countersigned with a proof
    assert _report(az) == (True, 2, 2)
    assert _report(ru) == (True, 1, 1)
