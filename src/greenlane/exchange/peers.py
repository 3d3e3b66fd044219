"""Talking to partner nodes: the HTTP client, and signed requests that say which node asks.

Envelopes and receipts carry their own signatures. The other node-to-node
requests (list what is pending for me, fetch one, ask a tracking state) carry
a detached JWS over ``METHOD path?query`` with a fresh random message id and
the attempt time, so the answering node knows which node asks without a
session, and a request cannot be moved to another path. With mutual TLS on,
the TLS client certificate must name the same node.
"""

from __future__ import annotations

import uuid
from typing import Final

import httpx
from sqlalchemy.orm import Session

from greenlane.api import tls
from greenlane.errors import GreenlaneError
from greenlane.exchange.context import NodeContext
from greenlane.trust import registry
from greenlane.trust.messages import VerifiedMessage, sign_message, verify_message
from greenlane.trust.registry import DatabaseKeys
from greenlane.trust.signers import Signer

SIGNATURE_HEADER: Final = "Greenlane-Signature"
ENVELOPE_MEDIA_TYPE: Final = "application/vnd.greenlane.envelope+json"
RECEIPT_MEDIA_TYPE: Final = "application/vnd.greenlane.receipt+json"
API: Final = "/api/v1/node"


def request_body(method: str, target: str) -> bytes:
    """What a node request's signature covers: the method and the exact path and query."""
    return f"{method.upper()} {target}".encode()


def sign_body(ctx: NodeContext, signer: Signer, body: bytes) -> str:
    """A node's signature over one request body, with a fresh message id and the time."""
    return sign_message(
        signer,
        sender=ctx.node_id,
        message_id=str(uuid.uuid4()),
        body=body,
        attempt_at=ctx.clock(),
    )


def sign_request(ctx: NodeContext, signer: Signer, method: str, target: str) -> str:
    return sign_body(ctx, signer, request_body(method, target))


def verify_body(ctx: NodeContext, session: Session, token: str, body: bytes) -> VerifiedMessage:
    """The partner node that signed ``body``; TrustError if the signature does not hold.

    Only nodes of other countries may ask: an agency key, or our own node's, is refused.
    """
    message = verify_message(token, body, keys=DatabaseKeys(session), recorded_at=ctx.clock())
    country = ctx.node_country(message.sender)
    if country is None or country == ctx.country:
        raise GreenlaneError(f"{message.sender} is not a partner node", code="node.not-a-partner")
    return message


def verify_request(
    ctx: NodeContext, session: Session, token: str, method: str, target: str
) -> VerifiedMessage:
    """:func:`verify_body` for a request without a body: signed over method, path and query."""
    return verify_body(ctx, session, token, request_body(method, target))


def client(ctx: NodeContext) -> httpx.Client:
    """The client the worker and the poller use; mutual TLS with the corridor PKI when on.

    With TLS on, the server must present the certificate of the node it is
    called for: checked per request by the transport, against the URL's node.
    """
    timeout = httpx.Timeout(ctx.settings.delivery_timeout_seconds)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
    if not ctx.settings.tls_enabled:
        return httpx.Client(timeout=timeout, limits=limits, trust_env=False)
    context = tls_client_context(ctx)
    return httpx.Client(
        timeout=timeout,
        trust_env=False,
        transport=_PerNodeTransport(ctx, context, limits),
    )


def tls_client_context(ctx: NodeContext):  # type: ignore[no-untyped-def]
    from greenlane.exchange.tls_files import corridor_roots, node_tls_files

    cert, key, password = node_tls_files(ctx)
    return tls.client_ssl_context(cert, key, password, corridor_roots(ctx))


class _PerNodeTransport(httpx.BaseTransport):
    """Routes each request through a transport that checks the server is the expected node.

    The server certificate must name that node and be issued by its own
    country's root: any corridor root passes the chain check.
    """

    def __init__(self, ctx: NodeContext, context: object, limits: httpx.Limits) -> None:
        self._by_origin: dict[str, httpx.BaseTransport] = {}
        with ctx.reads() as session:
            roots = {
                code: registry.root_certificate(session, code) for code in ctx.corridor.countries
            }
        for node in ctx.partner_nodes():
            origin = httpx.URL(node.endpoint)
            key = f"{origin.scheme}://{origin.host}:{origin.port}"
            country = ctx.node_country(node.id)
            assert country is not None  # a partner node is a node of the corridor
            self._by_origin[key] = tls.NodeIdentityTransport(
                node.id,
                context,  # type: ignore[arg-type]
                issued_by=roots[country],
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        transport = self._by_origin.get(f"{url.scheme}://{url.host}:{url.port}")
        if transport is None:
            raise httpx.ConnectError(f"{url} is not a partner node's endpoint", request=request)
        return transport.handle_request(request)

    def close(self) -> None:
        for transport in self._by_origin.values():
            transport.close()
