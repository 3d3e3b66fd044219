"""Mutual TLS between nodes on a real uvicorn server: who may connect, and who the app sees."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from greenlane.api.tls import (
    AsyncNodeIdentityTransport,
    NodeIdentityTransport,
    TlsH11Protocol,
    TlsSetupError,
    TransportIdentityError,
    client_ssl_context,
    peer_node,
    peer_node_of_response,
    require_peer,
    server_ssl_context,
    uvicorn_config_kwargs,
)
from greenlane.trust import pki
from greenlane.trust.keys import OwnerKind
from greenlane.trust.signers import write_private_key

PASSPHRASE = "tls test passphrase"
TIMEOUT = httpx.Timeout(5.0)
START_WAIT = 10.0


@dataclass(frozen=True)
class Credentials:
    cert_file: Path
    key_file: Path
    certificate: x509.Certificate


@dataclass(frozen=True)
class Pki:
    az_root: x509.Certificate
    ru_root: x509.Certificate
    nodes: dict[str, Credentials]

    @property
    def roots(self) -> list[x509.Certificate]:
        return [self.az_root, self.ru_root]

    def client(self, name: str) -> ssl.SSLContext:
        node = self.nodes[name]
        return client_ssl_context(node.cert_file, node.key_file, PASSPHRASE, self.roots)


def _issue(
    directory: Path,
    name: str,
    root: tuple[pki.PrivateKey, x509.Certificate],
    owner: pki.Owner,
) -> Credentials:
    key = pki.generate_key()
    certificate = pki.issue(root[0], root[1], key.public_key(), owner)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key.pem"
    cert_file.write_bytes(certificate.public_bytes(Encoding.PEM))
    write_private_key(key_file, key, PASSPHRASE)
    return Credentials(cert_file, key_file, certificate)


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Roots AZ and RU, their nodes, and an outsider root that also calls itself RU."""
    directory = tmp_path_factory.mktemp("pki")
    roots = {}
    for country, label in (("AZ", "AZ"), ("RU", "RU"), ("RU", "rogue")):
        key = pki.generate_key()
        roots[label] = (key, pki.create_root(country, f"{label} corridor", key))

    def node(name: str, root: str, node_id: str, kind: OwnerKind = OwnerKind.NODE) -> Credentials:
        country = roots[root][1].subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
        owner = pki.Owner(str(country[0].value), kind, node_id, node_id)
        return _issue(directory, name, roots[root], owner)

    nodes = {
        "az-node": node("az-node", "AZ", "az-node"),
        "ru-node": node("ru-node", "RU", "ru-node"),
        "ru-node-2": node("ru-node-2", "RU", "ru-node-2"),
        "rogue-ru-node": node("rogue-ru-node", "rogue", "ru-node"),
        "ru-made-az-node": node("ru-made-az-node", "RU", "az-node"),
        "az-fsa": node("az-fsa", "AZ", "az-fsa", OwnerKind.AGENCY),
    }
    return Pki(roots["AZ"][1], roots["RU"][1], nodes)


def make_app(hits: list[str]) -> Starlette:
    """A node's app in miniature: says who called, and lets only the named node through."""

    async def peer(request: Request) -> JSONResponse:
        hits.append(request.url.path)
        extension = (request.scope.get("extensions") or {}).get("tls")
        tls = (
            None
            if extension is None
            else {k: v for k, v in extension.items() if k != "client_cert_chain"}
        )
        return JSONResponse({"node": peer_node(request.scope), "tls": tls})

    async def only(request: Request) -> JSONResponse:
        hits.append(request.url.path)
        try:
            require_peer(request.scope, request.path_params["node"])
        except TransportIdentityError as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, 403)
        return JSONResponse({"node": request.path_params["node"]})

    return Starlette(routes=[Route("/peer", peer), Route("/only/{node}", only)])


@contextmanager
def serving(app: Starlette, scheme: str, **kwargs: Any) -> Iterator[str]:
    """Run uvicorn in a thread on a free 127.0.0.1 port; stop it on the way out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **kwargs
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_WAIT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_WAIT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def hits() -> list[str]:
    return []


@pytest.fixture(scope="module")
def az_server(corridor: Pki, hits: list[str]) -> Iterator[str]:
    """az-node's server: mutual TLS required, both corridor roots trusted."""
    node = corridor.nodes["az-node"]
    tls = uvicorn_config_kwargs(node.cert_file, node.key_file, PASSPHRASE, corridor.roots)
    with serving(make_app(hits), "https", **tls) as url:
        yield url


def _pem(certificates: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def get(url: str, context: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=context, timeout=TIMEOUT) as client:
        return client.get(url)


@pytest.mark.parametrize(
    ("version", "number"),
    [(ssl.TLSVersion.TLSv1_2, 0x0303), (ssl.TLSVersion.TLSv1_3, 0x0304)],
    ids=["tls1.2", "tls1.3"],
)
def test_corridor_client_is_named_to_the_app(
    corridor: Pki, az_server: str, version: ssl.TLSVersion, number: int
) -> None:
    """(a) A client presenting ru-node's certificate is seen by the app as node ru-node."""
    context = corridor.client("ru-node")
    context.maximum_version = version
    response = get(f"{az_server}/peer", context)
    assert response.status_code == 200
    assert response.json()["node"] == "ru-node"
    assert response.json()["tls"]["tls_version"] == number


def test_scope_carries_the_asgi_tls_extension(corridor: Pki, az_server: str) -> None:
    """The extension has the spec's keys: the server's own certificate, client DN, numbers."""
    tls = get(f"{az_server}/peer", corridor.client("ru-node")).json()["tls"]
    own = corridor.nodes["az-node"].certificate.public_bytes(Encoding.PEM).decode()
    assert tls["server_cert"] == own
    assert "CN=ru-node" in tls["client_cert_name"]
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int)
    assert 0 < tls["cipher_suite"] <= 0xFFFF


def _no_request_reached(hits: list[str], before: int) -> None:
    assert len(hits) == before, "the app saw a request it should never have been given"


def _tls12_handshake_fails(url: str, context: ssl.SSLContext) -> None:
    """Under TLS 1.2 the refusal is the handshake itself.

    Under TLS 1.3 the client's handshake completes before the server checks
    the certificate, so the client sees the connection closed instead.
    """
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    address = urlsplit(url)
    with (
        socket.create_connection((address.hostname, address.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw).close()


def test_client_without_certificate_is_refused(
    corridor: Pki, az_server: str, hits: list[str]
) -> None:
    """(b) Without a client certificate the TLS handshake fails and the app sees nothing."""

    def anonymous() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.load_verify_locations(cadata=_pem(corridor.roots))
        return context

    before = len(hits)
    with pytest.raises(httpx.TransportError):
        get(f"{az_server}/peer", anonymous())
    _tls12_handshake_fails(az_server, anonymous())
    _no_request_reached(hits, before)


def test_client_from_a_root_outside_the_corridor_is_refused(
    corridor: Pki, az_server: str, hits: list[str]
) -> None:
    """(c) A certificate naming ru-node from a root that only claims to be RU's is refused."""
    before = len(hits)
    with pytest.raises(httpx.TransportError):
        get(f"{az_server}/peer", corridor.client("rogue-ru-node"))
    _tls12_handshake_fails(az_server, corridor.client("rogue-ru-node"))
    _no_request_reached(hits, before)


def test_wrong_corridor_node_is_refused_by_the_app(corridor: Pki, az_server: str) -> None:
    """(d) ru-node-2 passes TLS but a route for ru-node answers 403 tls.wrong-peer."""
    allowed = get(f"{az_server}/only/ru-node", corridor.client("ru-node"))
    assert allowed.status_code == 200
    refused = get(f"{az_server}/only/ru-node", corridor.client("ru-node-2"))
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "tls.wrong-peer"
    assert "ru-node-2" in error["message"]


def test_client_refuses_a_server_naming_another_node(
    corridor: Pki, az_server: str, hits: list[str]
) -> None:
    """(e) Expecting az-node-2 but reaching az-node fails before the request is sent."""
    context = corridor.client("ru-node")
    with httpx.Client(transport=NodeIdentityTransport("az-node", context), timeout=TIMEOUT) as c:
        response = c.get(f"{az_server}/peer")
        assert peer_node_of_response(response) == "az-node"
        assert response.json()["node"] == "ru-node"
    before = len(hits)
    transport = NodeIdentityTransport("az-node-2", context)
    with (
        httpx.Client(transport=transport, timeout=TIMEOUT) as client,
        pytest.raises(TransportIdentityError) as refused,
    ):
        client.get(f"{az_server}/peer")
    assert refused.value.code == "tls.wrong-peer"
    assert "az-node" in refused.value.message
    _no_request_reached(hits, before)


def test_async_client_checks_the_server_node(
    corridor: Pki, az_server: str, hits: list[str]
) -> None:
    """The async transport and peer_node_of_response name the server as the sync ones do."""
    context = corridor.client("ru-node")

    async def call(expected: str) -> str | None:
        transport = AsyncNodeIdentityTransport(expected, context)
        async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
            response = await client.get(f"{az_server}/peer")
            return peer_node_of_response(response)

    assert asyncio.run(call("az-node")) == "az-node"
    before = len(hits)
    with pytest.raises(TransportIdentityError):
        asyncio.run(call("ru-node"))
    _no_request_reached(hits, before)


def test_plain_http_has_no_peer(corridor: Pki) -> None:
    """(f) Over plain HTTP (development) the same protocol adds no extension: no peer node."""
    with serving(make_app([]), "http", http=TlsH11Protocol, ws="none") as url:
        response = httpx.get(f"{url}/peer", timeout=TIMEOUT)
    assert response.json() == {"node": None, "tls": None}


def test_require_peer_checks_the_issuing_root(corridor: Pki) -> None:
    """A certificate naming az-node from RU's root passes only when the AZ root is not demanded."""

    def scope(name: str) -> dict[str, Any]:
        pem = corridor.nodes[name].certificate.public_bytes(Encoding.PEM).decode()
        return {"type": "http", "extensions": {"tls": {"client_cert_chain": [pem]}}}

    forged = scope("ru-made-az-node")
    require_peer(forged, "az-node")
    with pytest.raises(TransportIdentityError) as refused:
        require_peer(forged, "az-node", issued_by=corridor.az_root)
    assert refused.value.code == "tls.wrong-peer"
    require_peer(scope("az-node"), "az-node", issued_by=corridor.az_root)


def test_require_peer_without_certificate_or_node(corridor: Pki) -> None:
    """No certificate is tls.no-client-cert; an agency certificate names no node."""
    with pytest.raises(TransportIdentityError) as missing:
        require_peer({"type": "http"}, "ru-node")
    assert missing.value.code == "tls.no-client-cert"
    pem = corridor.nodes["az-fsa"].certificate.public_bytes(Encoding.PEM).decode()
    agency = {"type": "http", "extensions": {"tls": {"client_cert_chain": [pem]}}}
    assert peer_node(agency) is None
    with pytest.raises(TransportIdentityError) as refused:
        require_peer(agency, "az-fsa")
    assert refused.value.code == "tls.wrong-peer"


def test_contexts_trust_only_the_corridor_roots(corridor: Pki) -> None:
    """Both contexts hold exactly the corridor roots (no system CAs) and refuse TLS below 1.2."""
    node = corridor.nodes["az-node"]
    server = server_ssl_context(node.cert_file, node.key_file, PASSPHRASE, corridor.roots)
    client = corridor.client("az-node")
    expected = {r.public_bytes(Encoding.DER) for r in corridor.roots}
    for context in (server, client):
        assert {bytes(c) for c in context.get_ca_certs(binary_form=True)} == expected
        assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert server.verify_mode is ssl.CERT_REQUIRED
    assert client.verify_mode is ssl.CERT_REQUIRED


def test_unusable_credentials_are_refused_at_configuration(corridor: Pki) -> None:
    """A wrong passphrase or a certificate that names no node stops the server before it starts."""
    node = corridor.nodes["az-node"]
    with pytest.raises(TlsSetupError) as wrong:
        uvicorn_config_kwargs(node.cert_file, node.key_file, "not it", corridor.roots)
    assert wrong.value.code == "tls.credentials"
    agency = corridor.nodes["az-fsa"]
    with pytest.raises(TlsSetupError) as not_node:
        uvicorn_config_kwargs(agency.cert_file, agency.key_file, PASSPHRASE, corridor.roots)
    assert not_node.value.code == "tls.credentials"
