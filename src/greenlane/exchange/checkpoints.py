"""Evidence checkpoints between nodes: each signs its log, the partner countersigns it.

Every ``GREENLANE_CHECKPOINT_SECONDS`` a node whose log grew signs a
checkpoint (size, root, time), asks the partner which size of our log it
last countersigned, and sends the checkpoint with an RFC 9162 consistency
proof from there. The partner countersigns only a log that grew from what
it already holds (:func:`greenlane.trust.evidence.countersign`); we keep
the countersignature once it verifies. From then on neither node can rewrite
the history both signed without ``greenlane evidence verify`` saying so.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import httpx
import rfc8785
from sqlalchemy import func, select

from greenlane.errors import GreenlaneError
from greenlane.exchange import peers
from greenlane.exchange.context import NodeContext
from greenlane.store.models import EvidenceCheckpoint
from greenlane.trust import evidence
from greenlane.trust.keys import key_id
from greenlane.trust.registry import DatabaseKeys

log = logging.getLogger("greenlane.checkpoints")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GreenlaneError(f"{what} is not base64", code="evidence.malformed") from exc


# -- the countersigning node's side ---------------------------------------------------------


def latest_kept(ctx: NodeContext, partner: str) -> int:
    """The size of the largest checkpoint of ``partner``'s log this node holds (0 if none)."""
    with ctx.reads() as session:
        size = session.scalar(
            select(func.max(EvidenceCheckpoint.size)).where(EvidenceCheckpoint.log == partner)
        )
    return int(size or 0)


def countersign_for(ctx: NodeContext, partner: str, request: dict[str, Any]) -> dict[str, str]:
    """Countersign a partner's checkpoint sent over the API; refuse a rewritten history."""
    try:
        body = _unb64(request["body"], "body")
        signature = _unb64(request["signature"], "signature")
        key = str(request["key_id"])
        proof = [_unb64(p, "proof") for p in request.get("proof", [])]
    except (KeyError, TypeError) as exc:
        raise GreenlaneError(f"checkpoint request lacks {exc}", code="evidence.malformed") from exc
    now = ctx.clock()
    with ctx.sessions() as session, session.begin():
        signer = ctx.signer(session, ctx.node_id)
        _, counter = evidence.countersign(
            session,
            body,
            signature,
            key,
            keys=DatabaseKeys(session),
            partner_node=partner,
            signer=signer,
            me=ctx.node_id,
            at=now,
            proof=proof,
        )
        return {"countersignature": _b64(counter), "key_id": key_id(signer.certificate)}


# -- the checkpointing node's side ----------------------------------------------------------


def exchange_once(ctx: NodeContext, client: httpx.Client) -> int:
    """Sign our log if it grew and have every partner node countersign it; how many did."""
    with ctx.sessions() as session, session.begin():
        size, _ = evidence.size_and_root(session)
        if size == 0:
            return 0
        point = evidence.make_checkpoint(
            session, ctx.node_id, ctx.signer(session, ctx.node_id), at=ctx.clock()
        )
        if point.countersignature is not None:
            return 0
        checkpoint_id, body, signature, key = point.id, point.body, point.signature, point.key_id
    done = 0
    for node in ctx.partner_nodes():
        endpoint = node.endpoint.rstrip("/")
        target = f"{peers.API}/checkpoints/{ctx.node_id}/latest"
        response = peers.signed_get(ctx, client, endpoint, target)
        response.raise_for_status()
        kept = int(response.json()["size"])
        with ctx.reads() as session:
            proof = evidence.consistency_proof(session, kept, size) if 0 < kept < size else []
            signer = ctx.signer(session, ctx.node_id)
        request = rfc8785.dumps(
            {
                "body": _b64(body),
                "signature": _b64(signature),
                "key_id": key,
                "proof": [_b64(p) for p in proof],
            }
        )
        post_target = f"{peers.API}/checkpoints"
        token = peers.sign_body(ctx, signer, request)
        answer = client.post(
            endpoint + post_target,
            content=request,
            headers={peers.SIGNATURE_HEADER: token, "Content-Type": "application/json"},
        )
        answer.raise_for_status()
        data = answer.json()
        with ctx.sessions() as session, session.begin():
            row = session.get(EvidenceCheckpoint, checkpoint_id)
            assert row is not None
            evidence.record_countersignature(
                session,
                row,
                _unb64(data["countersignature"], "countersignature"),
                str(data["key_id"]),
                keys=DatabaseKeys(session),
                partner_node=node.id,
                at=ctx.clock(),
            )
        done += 1
    return done


class CheckpointExchange(peers.PeerLoop):
    """The loop that keeps both logs signed by both nodes."""

    name = "greenlane-checkpoint"

    def __init__(self, ctx: NodeContext, *, interval: float | None = None) -> None:
        super().__init__(ctx, interval or ctx.settings.checkpoint_seconds)

    def run_once(self) -> bool:
        try:
            exchange_once(self.ctx, self._client)
        except httpx.TransportError as exc:
            log.info("checkpoint exchange: partner not reachable (%s)", exc)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("checkpoint exchange failed: %s", exc)
        except GreenlaneError as exc:
            log.error("checkpoint exchange refused: %s: %s", exc.code, exc)
        return False
