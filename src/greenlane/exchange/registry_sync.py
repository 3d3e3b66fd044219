"""Partner key changes, fetched and applied: how a rotation or revocation reaches this node.

Each country's root CA signs its registry updates (:mod:`greenlane.trust.updates`);
a node serves its own country's updates at ``GET /api/v1/node/registry/{country}``
and fetches its partners' in sequence, applying each only if the partner's
pinned root signed it. The transport is not trusted for any of this: a node
that relays a forged or reordered update gets it refused by ``apply_update``.
"""

from __future__ import annotations

import base64
import binascii
import logging

import httpx

from greenlane.errors import GreenlaneError
from greenlane.exchange import peers
from greenlane.exchange.context import NodeContext
from greenlane.store.models import Country
from greenlane.trust.updates import apply_update

log = logging.getLogger("greenlane.registry")


def sync_partner(ctx: NodeContext, client: httpx.Client, node_id: str) -> int:
    """Fetch and apply the updates a partner node holds for its own country; how many applied."""
    country = ctx.node_country(node_id)
    if country is None or country == ctx.country:
        return 0
    endpoint = ctx.peer(node_id).endpoint.rstrip("/")
    applied = 0
    for _ in range(100):  # at most 100 pages of 100 updates per round
        with ctx.reads() as session:
            row = session.get(Country, country)
            after = row.registry_sequence if row else 0
        response = peers.signed_get(
            ctx, client, endpoint, f"{peers.API}/registry/{country}?after={after}"
        )
        response.raise_for_status()
        updates = response.json().get("updates", [])
        if not updates:
            return applied
        for update in updates:
            try:
                body = base64.b64decode(update["body"], validate=True)
                signature = base64.b64decode(update["signature"], validate=True)
            except (KeyError, TypeError, binascii.Error) as exc:
                raise GreenlaneError(
                    f"registry update from {node_id} is malformed: {exc}",
                    code="trust.update-malformed",
                ) from exc
            with ctx.sessions() as session, session.begin():
                apply_update(session, body, signature, recorded_at=ctx.clock())
            applied += 1
            log.info(
                "applied registry update %s#%s from %s", country, update.get("sequence"), node_id
            )
    return applied


class RegistrySync(peers.PeerLoop):
    """A loop that keeps partner keys current (every ``interval`` seconds)."""

    name = "greenlane-registry"

    def __init__(self, ctx: NodeContext, *, interval: float | None = None) -> None:
        super().__init__(ctx, interval or ctx.settings.registry_sync_seconds)

    def run_once(self) -> bool:
        self.sync_once()
        return False

    def sync_once(self) -> int:
        total = 0
        for node in self.ctx.partner_nodes():
            try:
                total += sync_partner(self.ctx, self._client, node.id)
            except httpx.TransportError as exc:  # the partner is down: the next round retries
                log.info("registry sync with %s: not reachable (%s)", node.id, exc)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("registry sync with %s failed: %s", node.id, exc)
            except GreenlaneError as exc:
                log.error("registry update from %s refused: %s: %s", node.id, exc.code, exc)
        return total
