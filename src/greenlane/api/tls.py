"""Mutual TLS between nodes, with the client certificate handed to the ASGI app.

Nodes talk over mutual TLS with the corridor PKI: each node presents the
certificate its country root issued (:func:`greenlane.trust.pki.issue`), which
names it only by the URI ``urn:greenlane:node:<id>`` (no DNS or IP name). Both
sides trust the corridor roots and nothing else, and both then check *which*
node the other certificate names, because any corridor certificate passes the
chain check.

Server side. Stock uvicorn (0.54 here) verifies a client certificate when asked
to but never puts it into the scope, so the app cannot tell which node is
calling. :class:`TlsH11Protocol` subclasses uvicorn's h11 protocol: when a
connection is made (asyncio calls ``connection_made`` only after the TLS
handshake) it reads the peer certificate from the transport once and wraps the
per-connection app so every request scope on that connection carries the
standard ASGI TLS extension, ``scope["extensions"]["tls"]``
(https://asgi.readthedocs.io/en/latest/specs/tls.html). The app reads it through
:func:`peer_node` and :func:`require_peer`, so nothing here is uvicorn-specific
on the app side: a server that implements the extension natively needs no change
in the app. Renegotiation is switched off, so the certificate read at the
handshake is the certificate of every request on the connection. WebSockets are
switched off (uvicorn builds its WebSocket protocol with the bare app, which
would drop the extension). httptools is not installed and not a dependency;
:func:`uvicorn_config_kwargs` names our h11 class explicitly, so installing it
later cannot silently replace the protocol.

Alternatives considered (facts as found, not opinions):

- hypercorn: the TLS extension is an open issue (pgjones/hypercorn#62); its
  maintainer wrote the spec looked not implementable as defined; a fork,
  nonecorn, implements part of it.
- granian: verifies client certificates (server-side mTLS) but does not pass
  them to the app; the extension is an open issue (emmett-framework/granian#788)
  with an open pull request (#854).
- daphne: the HTTP scope it builds (daphne/http_protocol.py) has no
  ``extensions`` key.
- uvicorn upstream: pull requests for the extension (Kludex/uvicorn#1119, #3132)
  are open, #3043 was closed; none is in the pinned release.
- a TLS-terminating proxy that forwards the certificate in a header: one more
  process to run and secure, and an app that trusts a header is one
  misconfiguration away from trusting anyone who sends it.

Client side. :func:`client_ssl_context` verifies the server chain against the
corridor roots with hostname checking off (there is no DNS name to check);
:class:`NodeIdentityTransport` (and :class:`AsyncNodeIdentityTransport`) put the
identity check back: right after the handshake of each new connection, before a
request byte is written, they refuse a server whose certificate names another
node, and they check the response's connection again as a second line.

Errors::

    GreenlaneError
     ├── TlsSetupError            tls.credentials: the node's own TLS files refused at start
     └── TransportIdentityError   tls.wrong-peer, tls.no-client-cert: the peer is not who it must be
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from greenlane.errors import GreenlaneError
from greenlane.trust import pki
from greenlane.trust.signers import TrustError

_NODE_URN = "urn:greenlane:node:"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
"""Protocol names as :meth:`ssl.SSLObject.version` gives them -> the numbers the spec wants."""


class TlsSetupError(GreenlaneError):
    """The node's own certificate, key or trust roots cannot make a TLS context."""

    code = "tls.credentials"


class TransportIdentityError(GreenlaneError):
    """The other end of a connection is not the node it must be (or names no node)."""

    code = "tls.wrong-peer"


# -- contexts -------------------------------------------------------------------------------


def server_ssl_context(
    cert_file: Path,
    key_file: Path,
    password: str | None,
    trust_roots: Sequence[x509.Certificate],
    require_client_cert: bool = True,
) -> ssl.SSLContext:
    """A server context: TLS 1.2+, corridor roots only, client certificate required or optional.

    Without ``require_client_cert`` the server still asks for a certificate
    (CERT_OPTIONAL): one that is sent is verified and named in the scope, a
    client without one is let in.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context, trust_roots)
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    _load_identity(context, cert_file, key_file, password)
    return context


def client_ssl_context(
    cert_file: Path, key_file: Path, password: str | None, trust_roots: Sequence[x509.Certificate]
) -> ssl.SSLContext:
    """A client context for httpx: presents the node's certificate, verifies the server's chain.

    Hostname checking is off because node certificates carry no DNS or IP
    name; use it through :class:`NodeIdentityTransport`, which checks the node
    the server certificate names instead. On its own it accepts any corridor node.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _harden(context, trust_roots)
    _load_identity(context, cert_file, key_file, password)
    return context


def _harden(context: ssl.SSLContext, trust_roots: Sequence[x509.Certificate]) -> None:
    if not trust_roots:
        raise TlsSetupError("no corridor root to verify peers against", code="tls.credentials")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    # Only the corridor roots: the system CA store is never loaded into these contexts.
    context.load_verify_locations(cadata=_pem(trust_roots))


def _pem(certificates: Sequence[x509.Certificate]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates)


def _load_identity(
    context: ssl.SSLContext, cert_file: Path, key_file: Path, password: str | None
) -> None:
    """Load the node's own certificate and key, refusing a certificate that names no node."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsSetupError(
            f"{cert_file}: cannot read the TLS certificate ({exc})", code="tls.credentials"
        ) from exc
    if node_of(certificate) is None:
        raise TlsSetupError(
            f"{cert_file}: the certificate names no node (urn:greenlane:node:...)",
            code="tls.credentials",
        )
    # A callback, never None: with None, OpenSSL would prompt on the terminal for the passphrase.
    secret = password or ""
    try:
        context.load_cert_chain(cert_file, key_file, password=lambda: secret)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"{key_file}: cannot load the TLS key for {cert_file} "
            f"(wrong passphrase, or not this certificate's key: {exc})",
            code="tls.credentials",
        ) from exc


# -- who is on the other end ----------------------------------------------------------------


def node_of(certificate: x509.Certificate) -> str | None:
    """The node id a certificate names as ``urn:greenlane:node:<id>``, or None (agency, none)."""
    uri = pki.owner_uri(certificate)
    if uri is None or not uri.startswith(_NODE_URN):
        return None
    return uri.removeprefix(_NODE_URN) or None


def peer_certificate(scope: Mapping[str, Any]) -> x509.Certificate | None:
    """The verified client certificate of the request's connection, from the ASGI TLS extension.

    None without TLS, without a client certificate, or on a server that does
    not implement the extension.
    """
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls:
        return None
    chain = tls.get("client_cert_chain") or []
    for pem in chain:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    return None


def peer_node(scope: Mapping[str, Any]) -> str | None:
    """The node the client certificate names, or None (no TLS, no certificate, not a node)."""
    certificate = peer_certificate(scope)
    return None if certificate is None else node_of(certificate)


def require_peer(
    scope: Mapping[str, Any], expected_node: str, *, issued_by: x509.Certificate | None = None
) -> x509.Certificate:
    """Refuse a request unless its client certificate names ``expected_node``.

    ``issued_by`` is the root of the node's own country: pass it, or a corridor
    root could issue a certificate naming another country's node and pass.
    """
    certificate = peer_certificate(scope)
    if certificate is None:
        raise TransportIdentityError(
            f"no client certificate: only node {expected_node} may call this",
            code="tls.no-client-cert",
        )
    _check_names(certificate, expected_node, issued_by, "client")
    return certificate


def _check_names(
    certificate: x509.Certificate,
    expected_node: str,
    issued_by: x509.Certificate | None,
    side: str,
) -> None:
    named = node_of(certificate)
    if named != expected_node:
        what = pki.owner_uri(certificate) or certificate.subject.rfc4514_string()
        raise TransportIdentityError(
            f"the {side} certificate names {what}, not node {expected_node}",
            code="tls.wrong-peer",
        )
    if issued_by is not None:
        try:
            pki.check_issued_by(certificate, issued_by)
        except TrustError as exc:
            raise TransportIdentityError(
                f"the {side} certificate for node {expected_node} was not issued by "
                f"{issued_by.subject.rfc4514_string()}",
                code="tls.wrong-peer",
            ) from exc


# -- server: uvicorn with the ASGI TLS extension --------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _WithTls:
    """An ASGI app that adds one connection's TLS extension to each request scope."""

    __slots__ = ("app", "tls")

    def __init__(self, app: App, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            # A fresh copy per request: an app that edits its scope cannot change the next one's.
            extensions["tls"] = {
                **self.tls,
                "client_cert_chain": list(self.tls["client_cert_chain"]),
            }
            scope["extensions"] = extensions
        await self.app(scope, receive, send)


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, giving each request on a TLS connection the ASGI TLS extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = _tls_extension(transport, self.config)
        if tls is not None:
            self.app = _WithTls(self.app, tls)


def _tls_extension(transport: asyncio.BaseTransport, config: Config) -> dict[str, Any] | None:
    """The extension's dict for a connection; None when it is not TLS (the spec forbids it)."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(True)
    chain: list[str] = []
    name = None
    if der:
        certificate = x509.load_der_x509_certificate(der)
        chain.append(certificate.public_bytes(Encoding.PEM).decode("ascii"))
        name = certificate.subject.rfc4514_string()
    cipher = ssl_object.cipher()
    context = transport.get_extra_info("sslcontext")
    factory = config.ssl_context_factory
    return {
        "server_cert": factory.server_cert_pem if isinstance(factory, CorridorTls) else None,
        # Python 3.11 gives only the leaf; corridor chains are root -> leaf, the root pinned.
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": (
            _cipher_ids(context).get(cipher[0])
            if cipher and isinstance(context, ssl.SSLContext)
            else None
        ),
    }


@functools.lru_cache(maxsize=8)
def _cipher_ids(context: ssl.SSLContext) -> dict[str, int]:
    """OpenSSL cipher names -> the 16-bit IANA numbers the spec wants (OpenSSL ids 0x0300XXXX)."""
    return {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}


@dataclass(frozen=True)
class CorridorTls:
    """uvicorn's ``ssl_context_factory``: builds the server context in each worker.

    Plain data so uvicorn can hand it to worker processes; it also carries the
    server certificate for the extension's ``server_cert``.
    """

    cert_file: Path
    key_file: Path
    password: str | None = field(repr=False)
    roots_pem: bytes
    require_client_cert: bool
    server_cert_pem: str

    def __call__(self, config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        roots = x509.load_pem_x509_certificates(self.roots_pem)
        return server_ssl_context(
            self.cert_file, self.key_file, self.password, roots, self.require_client_cert
        )


class UvicornTls(TypedDict):
    """Keyword arguments for ``uvicorn.Config``."""

    ssl_context_factory: CorridorTls
    http: type[asyncio.Protocol]
    ws: str


def uvicorn_config_kwargs(
    cert_file: Path,
    key_file: Path,
    password: str | None,
    trust_roots: Sequence[x509.Certificate],
    *,
    require_client_cert: bool = True,
) -> UvicornTls:
    """What ``uvicorn.Config(app, host=..., port=..., **this)`` needs to serve mutual TLS.

    The context is built once here, so a wrong passphrase or a missing file is
    a :class:`TlsSetupError` now rather than a traceback inside uvicorn's start.
    """
    server_ssl_context(cert_file, key_file, password, trust_roots, require_client_cert)
    factory = CorridorTls(
        cert_file=cert_file,
        key_file=key_file,
        password=password,
        roots_pem=_pem(trust_roots).encode("ascii"),
        require_client_cert=require_client_cert,
        server_cert_pem=x509.load_pem_x509_certificate(cert_file.read_bytes())
        .public_bytes(Encoding.PEM)
        .decode("ascii"),
    )
    return {"ssl_context_factory": factory, "http": TlsH11Protocol, "ws": "none"}


# -- client: httpx with the node identity checked ------------------------------------------


def _peer_der(ssl_object: Any) -> bytes | None:
    if ssl_object is None:
        return None
    # Positional: the sync backend hands out the C-level object, whose argument has no keyword.
    der: bytes | None = ssl_object.getpeercert(True)
    return der or None


def _server_der(response: httpx.Response) -> bytes | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        return _peer_der(stream.get_extra_info("ssl_object"))
    except (OSError, ValueError, AttributeError):  # the connection is already closed
        return None


def peer_node_of_response(response: httpx.Response) -> str | None:
    """The node the server's certificate names, from an httpx response (sync or async).

    Call it while the response is open; None without TLS or once the
    connection is gone.
    """
    der = _server_der(response)
    return None if der is None else node_of(x509.load_der_x509_certificate(der))


@dataclass
class _Identity:
    """The node a transport must reach, and the server certificates already found to name it."""

    expected_node: str
    issued_by: x509.Certificate | None
    verified: set[bytes] = field(default_factory=set)

    def check(self, der: bytes | None) -> None:
        if der in self.verified:
            return
        if der is None:
            raise TransportIdentityError(
                f"no server certificate: node {self.expected_node} must be reached over TLS",
                code="tls.wrong-peer",
            )
        certificate = x509.load_der_x509_certificate(der)
        _check_names(certificate, self.expected_node, self.issued_by, "server")
        self.verified.add(der)


TraceCallback = Callable[[str, dict[str, Any]], Any]
_HANDSHAKE_DONE = "connection.start_tls.complete"
"""httpcore's documented ``trace`` event: the TLS handshake of a new connection succeeded."""


class NodeIdentityTransport(httpx.BaseTransport):
    """An httpx transport that talks only to ``expected_node``.

    Owns its connection pool, so every pooled connection was checked for this
    node. Use: ``httpx.Client(transport=NodeIdentityTransport("ru-node", ctx))``.
    """

    def __init__(
        self,
        expected_node: str,
        ssl_context: ssl.SSLContext,
        *,
        issued_by: x509.Certificate | None = None,
    ) -> None:
        self._identity = _Identity(expected_node, issued_by)
        self._inner = httpx.HTTPTransport(verify=ssl_context, http1=True, http2=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        outer: TraceCallback | None = request.extensions.get("trace")

        def trace(event: str, info: dict[str, Any]) -> None:
            if event == _HANDSHAKE_DONE:
                stream = info["return_value"]
                try:
                    self._identity.check(_peer_der(stream.get_extra_info("ssl_object")))
                except TransportIdentityError:
                    stream.close()
                    raise
            if outer is not None:
                outer(event, info)

        request.extensions = {**request.extensions, "trace": trace}
        response = self._inner.handle_request(request)
        try:
            self._identity.check(_server_der(response))
        except TransportIdentityError:
            response.close()
            raise
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncNodeIdentityTransport(httpx.AsyncBaseTransport):
    """:class:`NodeIdentityTransport` for ``httpx.AsyncClient``."""

    def __init__(
        self,
        expected_node: str,
        ssl_context: ssl.SSLContext,
        *,
        issued_by: x509.Certificate | None = None,
    ) -> None:
        self._identity = _Identity(expected_node, issued_by)
        self._inner = httpx.AsyncHTTPTransport(verify=ssl_context, http1=True, http2=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        outer: TraceCallback | None = request.extensions.get("trace")

        async def trace(event: str, info: dict[str, Any]) -> None:
            if event == _HANDSHAKE_DONE:
                stream = info["return_value"]
                try:
                    self._identity.check(_peer_der(stream.get_extra_info("ssl_object")))
                except TransportIdentityError:
                    await stream.aclose()
                    raise
            if outer is not None:
                await outer(event, info)

        request.extensions = {**request.extensions, "trace": trace}
        response = await self._inner.handle_async_request(request)
        try:
            self._identity.check(_server_der(response))
        except TransportIdentityError:
            await response.aclose()
            raise
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
