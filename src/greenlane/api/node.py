"""The node-to-node API: push an envelope, pull envelopes, post a receipt, ask a tracking state.

Mirrors the IPPC hub's operations (DeliverEnvelope, GetUnreadEnvelopes,
AcknowledgeEnvelopeReceipt, GetEnvelopeTrackingInfo) and its field names,
over JSON with detached signatures instead of SOAP. Every request is signed
by the calling node (an envelope or a receipt by its own signature, the rest
by :func:`greenlane.exchange.peers.sign_request`); with mutual TLS on, the
client certificate must name the same node.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from greenlane.api import tls
from greenlane.api.body import read_body
from greenlane.errors import GreenlaneError
from greenlane.exchange import checkpoints, delivery, inbound, peers, pull
from greenlane.exchange.context import NodeContext
from greenlane.exchange.tracking import TrackingState
from greenlane.store.models import InboxMessage, RegistryUpdate
from greenlane.trust import pki, registry

router = APIRouter(prefix=peers.API, tags=["node-to-node"])

MAX_RECEIPT_BYTES = 1024 * 1024
MAX_CHECKPOINT_BYTES = 1024 * 1024


def context(request: Request) -> NodeContext:
    ctx: NodeContext = request.app.state.node
    return ctx


Ctx = Annotated[NodeContext, Depends(context)]
Signature = Annotated[
    str,
    Header(
        alias=peers.SIGNATURE_HEADER,
        description="Detached JWS (b64=false) by the calling node's key over the body, or "
        "for requests without a body over `METHOD path?query`. A request without one is "
        "refused as `message.malformed`, like any unreadable signature.",
    ),
]


def _tls_peer(ctx: NodeContext, request: Request) -> str | None:
    """The node the connection's client certificate names; None with TLS off.

    Any corridor root passes the TLS chain check, so the certificate must also
    name a node of the corridor and be issued by that node's own country root:
    otherwise one country's root could vouch for another country's node. Reads
    the root from the database, so call it off the event loop.
    """
    if not ctx.settings.tls_enabled:
        return None
    certificate = tls.peer_certificate(request.scope)
    if certificate is None:
        raise tls.TransportIdentityError(
            "node-to-node requests need a corridor client certificate", code="tls.no-client-cert"
        )
    node = tls.node_of(certificate)
    country = ctx.node_country(node) if node else None
    if node is None or country is None:
        named = pki.owner_uri(certificate) or certificate.subject.rfc4514_string()
        raise tls.TransportIdentityError(
            f"the client certificate names {named}, not a node of the corridor",
            code="tls.wrong-peer",
        )
    with ctx.reads() as session:
        root = registry.root_certificate(session, country)
    tls.require_peer(request.scope, node, issued_by=root)
    return node


def _target(request: Request) -> str:
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def calling_node(request: Request, ctx: Ctx, signature: Signature = "") -> str:
    """The partner node that signed this request (and, with TLS, holds the connection)."""
    with ctx.reads() as session:
        message = peers.verify_request(ctx, session, signature, request.method, _target(request))
    return _check_peer(ctx, request, message.sender)


def _check_peer(ctx: NodeContext, request: Request, node: str) -> str:
    peer = _tls_peer(ctx, request)
    if peer is not None and peer != node:
        raise GreenlaneError(
            f"the TLS client certificate names {peer}, the request is signed by {node}",
            code="tls.wrong-peer",
        )
    return node


Caller = Annotated[str, Depends(calling_node)]

_RECEIPT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The signed receipt: canonical JSON, its JWS in the Greenlane-Signature "
        "header. The same receipt answers every retry of the same message.",
        "content": {peers.RECEIPT_MEDIA_TYPE: {}},
    }
}


@router.post("/envelopes", responses=_RECEIPT, summary="Deliver an envelope (push)")
async def deliver_envelope(request: Request, ctx: Ctx, signature: Signature = "") -> Response:
    """Store the envelope, then answer with a signed receipt.

    A refused envelope (unknown sender, bad or replayed signature, wrong TLS
    identity, oversized, malformed) gets an error and leaves nothing but a
    line in the security log; a bad payload is stored in quarantine and
    receipted ``DeliveredWithWarnings`` or ``DeliveredNotReadable``.
    """
    peer, data = await _arrived(ctx, request, ctx.settings.envelope_max_bytes)
    (answer,) = await _receive(ctx, [(data, signature)], peer)
    if isinstance(answer, GreenlaneError):
        raise answer
    return Response(
        answer.receipt,
        media_type=peers.RECEIPT_MEDIA_TYPE,
        headers={peers.SIGNATURE_HEADER: answer.token},
    )


async def _arrived(ctx: NodeContext, request: Request, limit: int) -> tuple[str | None, bytes]:
    """The TLS peer (with TLS on) and the body of a push, each refused with a security-log line."""
    try:
        peer = (
            await run_in_threadpool(_tls_peer, ctx, request) if ctx.settings.tls_enabled else None
        )
        return peer, await read_body(request, limit, code="envelope.too-large")
    except GreenlaneError as refused:
        _refused_at_the_door(ctx, request, refused)
        raise


def _refused_at_the_door(ctx: NodeContext, request: Request, refused: GreenlaneError) -> None:
    """Log a push refused before inbound.receive_many saw it (which logs its own refusals)."""
    inbound.security_log.warning(
        "envelope refused: code=%s tls_peer=%s client=%s reason=%s",
        refused.code,
        tls.peer_node(request.scope),
        request.client.host if request.client else None,
        refused,
    )
    ctx.metrics.refused.labels(refused.code).inc()


async def _receive(
    ctx: NodeContext, items: list[tuple[bytes, str]], peer: str | None
) -> list[inbound.Answer | GreenlaneError]:
    """Receive pushed envelopes and count what came of each."""
    answers = await run_in_threadpool(
        lambda: inbound.receive_many(
            ctx, items, tls_peer=peer, check_tls_peer=ctx.settings.tls_enabled
        )
    )
    for answer in answers:
        if isinstance(answer, GreenlaneError):
            ctx.metrics.refused.labels(answer.code).inc()
        elif not answer.duplicate:
            ctx.metrics.received.labels(answer.tracking.value).inc()
    return answers


MAX_BATCH = 100


@router.post(
    "/envelopes/batch",
    summary="Deliver several envelopes at once (push)",
    responses={200: {"content": {"application/json": {}}}},
)
async def deliver_envelopes(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Several envelopes in one request, each judged and receipted exactly as if pushed alone.

    Body: ``{"Envelopes": [{"Envelope": <base64 of the encoded envelope>,
    "Signature": <its detached JWS>}, ...]}`` (at most 100). Answer, in the same
    order: ``{"Results": [{"Receipt": <base64>, "Signature": <JWS>}`` or
    ``{"Error": {"code", "message"}}]}``. One envelope refused refuses only that
    one; the accepted ones are stored in one transaction, which is what makes a
    batch cheaper than as many requests.
    """
    limit = ctx.settings.envelope_max_bytes * 2 + 64 * 1024
    peer, data = await _arrived(ctx, request, limit)
    try:
        items = _batch_items(data)
    except GreenlaneError as refused:
        _refused_at_the_door(ctx, request, refused)
        raise
    results: list[dict[str, Any]] = [
        {"Error": {"code": answer.code, "message": answer.message}}
        if isinstance(answer, GreenlaneError)
        else {
            "Receipt": base64.b64encode(answer.receipt).decode("ascii"),
            "Signature": answer.token,
        }
        for answer in await _receive(ctx, items, peer)
    ]
    return {"Results": results}


def _batch_items(data: bytes) -> list[tuple[bytes, str]]:
    try:
        parsed = json.loads(data)
        entries = parsed["Envelopes"]
        if not isinstance(entries, list) or not 0 < len(entries) <= MAX_BATCH:
            raise ValueError(f"Envelopes must be a list of 1 to {MAX_BATCH}")
        return [
            (base64.b64decode(str(e["Envelope"]), validate=True), str(e["Signature"]))
            for e in entries
        ]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise GreenlaneError(f"the batch is malformed: {exc}", code="envelope.malformed") from exc


@router.get("/envelopes", summary="List envelopes waiting for the calling node (pull)")
async def unread_envelopes(
    ctx: Ctx, caller: Caller, limit: Annotated[int, Query(ge=1, le=pull.MAX_LIST)] = 100
) -> dict[str, Any]:
    items = await run_in_threadpool(pull.pending_for, ctx, caller, limit)
    return {"envelopes": items}


@router.get(
    "/envelopes/{message_id}",
    summary="Fetch one envelope (pull)",
    responses={200: {"content": {peers.ENVELOPE_MEDIA_TYPE: {}}}},
)
async def fetch_envelope(message_id: str, ctx: Ctx, caller: Caller) -> Response:
    envelope, token = await run_in_threadpool(pull.fetch, ctx, caller, message_id)
    return Response(
        envelope, media_type=peers.ENVELOPE_MEDIA_TYPE, headers={peers.SIGNATURE_HEADER: token}
    )


@router.post("/envelopes/{message_id}/receipt", summary="Acknowledge an envelope (pull)")
async def acknowledge_envelope(
    message_id: str, request: Request, ctx: Ctx, signature: Signature = ""
) -> dict[str, Any]:
    """Take the receiving node's signed receipt for an envelope it fetched.

    The receipt's own signature says which node sends it; it must be the
    node the envelope was for (and, with TLS, the connection's node).
    """
    data = await read_body(request, MAX_RECEIPT_BYTES, code="receipt.malformed")
    outbox_id, receiver = await run_in_threadpool(pull.addressee, ctx, message_id)
    await run_in_threadpool(_check_peer, ctx, request, receiver)
    outcome = await run_in_threadpool(delivery.accept_receipt, ctx, outbox_id, data, signature)
    return {"MessageId": message_id, "HUBTrackingInfo": outcome.state.value}


@router.get("/envelopes/{message_id}/tracking", summary="Tracking state of an envelope sent here")
async def envelope_tracking(message_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """``HUBTrackingInfo`` of an envelope the calling node sent; ``EnvelopeNotExists`` if none."""

    def look() -> dict[str, Any]:
        with ctx.reads() as session:
            row = session.scalar(
                select(InboxMessage).where(
                    InboxMessage.sender_node == caller, InboxMessage.message_id == message_id
                )
            )
        if row is None:
            return {"MessageId": message_id, "HUBTrackingInfo": TrackingState.ENVELOPE_NOT_EXISTS}
        return {
            "MessageId": message_id,
            "HUBTrackingInfo": row.state,
            "hubDeliveryNumber": row.id,
        }

    return await run_in_threadpool(look)


@router.get("/registry/{country}", summary="Registry updates of a country, after a sequence")
async def registry_updates(
    country: str, ctx: Ctx, caller: Caller, after: Annotated[int, Query(ge=0)] = 0
) -> dict[str, Any]:
    """The signed key updates this node holds for ``country``, in order: what a partner applies."""

    def look() -> list[dict[str, Any]]:
        with ctx.reads() as session:
            rows = session.scalars(
                select(RegistryUpdate)
                .where(RegistryUpdate.country == country, RegistryUpdate.sequence > after)
                .order_by(RegistryUpdate.sequence)
                .limit(100)
            )
            return [
                {
                    "sequence": row.sequence,
                    "body": base64.b64encode(row.body).decode(),
                    "signature": base64.b64encode(row.signature).decode(),
                }
                for row in rows
            ]

    return {"country": country, "updates": await run_in_threadpool(look)}


@router.get("/checkpoints/{log}/latest", summary="Largest checkpoint of the caller's log held here")
async def latest_checkpoint(log: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The size from which the caller's next checkpoint must prove consistency."""
    if log != caller:
        raise GreenlaneError(f"{caller} may ask only about its own log", code="auth.forbidden")
    return {"log": log, "size": await run_in_threadpool(checkpoints.latest_kept, ctx, caller)}


@router.post("/checkpoints", summary="Countersign the calling node's evidence checkpoint")
async def countersign_checkpoint(
    request: Request, ctx: Ctx, signature: Signature = ""
) -> dict[str, str]:
    """Countersign a checkpoint of the caller's log that extends what this node holds.

    Body: ``{"body", "signature", "key_id", "proof"}`` (base64), signed by the
    calling node; a checkpoint that rewrites history is refused
    (``evidence.history-rewritten``).
    """
    data = await read_body(request, MAX_CHECKPOINT_BYTES, code="request.too-large")

    def run() -> dict[str, str]:
        with ctx.reads() as session:
            caller = peers.verify_body(ctx, session, signature, data).sender
        _check_peer(ctx, request, caller)
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise GreenlaneError(f"not JSON: {exc}", code="evidence.malformed") from exc
        if not isinstance(parsed, dict):
            raise GreenlaneError("a checkpoint request is an object", code="evidence.malformed")
        return checkpoints.countersign_for(ctx, caller, parsed)

    return await run_in_threadpool(run)
