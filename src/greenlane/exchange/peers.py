"""Talking to partner nodes: the HTTP client, and signed requests that say which node asks.

Envelopes and receipts carry their own signatures. The other node-to-node
requests (list what is pending for me, fetch one, ask a tracking state) carry
a detached JWS over ``METHOD path?query`` with a fresh random message id and
the attempt time, so the answering node knows which node asks without a
session, and a request cannot be moved to another path. With mutual TLS on,
the TLS client certificate must name the same node.
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from typing import Final, Self

import httpx
from cryptography import x509
from sqlalchemy.orm import Session

from greenlane.api import tls
from greenlane.errors import GreenlaneError
from greenlane.exchange.context import NodeContext
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


def signed_get(
    ctx: NodeContext, client: httpx.Client, endpoint: str, target: str
) -> httpx.Response:
    """GET ``target`` from a partner node's ``endpoint``, signed as this node."""
    with ctx.reads() as session:
        signer = ctx.signer(session, ctx.node_id)
    token = sign_request(ctx, signer, "GET", target)
    return client.get(endpoint + target, headers={SIGNATURE_HEADER: token})


class PeerLoop:
    """A background thread that works with the partner nodes every ``interval`` seconds.

    Subclasses say what one round is (:meth:`run_once`, which handles the
    errors it expects); a round that reports more work waiting starts the
    next at once. An unexpected error is logged and the loop goes on.
    """

    name = "greenlane-peers"

    def __init__(self, ctx: NodeContext, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self.stopping = threading.Event()
        self._client = client(ctx)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop if it was started (one used only for single rounds is just closed)."""
        self.stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._client.close()

    def run_once(self) -> bool:
        """One round; True when more work is already waiting."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                more = self.run_once()
            except Exception:
                logging.getLogger("greenlane.peers").exception("%s: round failed", self.name)
                more = False
            if not more:
                self.stopping.wait(self.interval)


def client(ctx: NodeContext) -> httpx.Client:
    """The client the worker and the poller use; mutual TLS with the corridor PKI when on.

    With TLS on, the server must present the certificate of the node it is
    called for: checked per request by the transport, against the URL's node.
    """
    timeout = httpx.Timeout(ctx.settings.delivery_timeout_seconds)
    if not ctx.settings.tls_enabled:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        return httpx.Client(timeout=timeout, limits=limits, trust_env=False)
    from greenlane.exchange.tls_files import node_tls_files, roots_by_country

    roots = roots_by_country(ctx)
    cert, key, password = node_tls_files(ctx)
    context = tls.client_ssl_context(cert, key, password, list(roots.values()))
    return httpx.Client(
        timeout=timeout, trust_env=False, transport=_PerNodeTransport(ctx, context, roots)
    )


class _PerNodeTransport(httpx.BaseTransport):
    """Routes each request through a transport that checks the server is the expected node.

    The server certificate must name that node and be issued by its own
    country's root: any corridor root passes the chain check.
    """

    def __init__(
        self, ctx: NodeContext, context: ssl.SSLContext, roots: dict[str, x509.Certificate]
    ) -> None:
        self._by_origin: dict[str, httpx.BaseTransport] = {}
        for node in ctx.partner_nodes():
            origin = httpx.URL(node.endpoint)
            country = ctx.node_country(node.id)
            assert country is not None  # a partner node is a node of the corridor
            self._by_origin[f"{origin.scheme}://{origin.host}:{origin.port}"] = (
                tls.NodeIdentityTransport(node.id, context, issued_by=roots[country])
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
