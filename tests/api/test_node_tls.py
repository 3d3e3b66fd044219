"""Both nodes over mutual TLS: delivery works, and only the signing node's own certificate passes.

The corridor is scaffolded, its endpoints switched to https, and both nodes
served by uvicorn with the corridor PKI (harness.serve with tls_enabled). Each
refusal below comes with an envelope correctly signed by the AZ node: what is
wrong is only the TLS identity of the connection that carries it.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from greenlane.api.app import create_app
from greenlane.api.tls import uvicorn_config_kwargs
from greenlane.corridor.scaffold import Mode, Scaffold
from greenlane.exchange import delivery, outbound, peers
from greenlane.exchange.context import NodeContext
from greenlane.exchange.envelope import encode, make_envelope, sign_attempt
from greenlane.exchange.pull import Poller
from greenlane.exchange.tls_files import corridor_roots, node_tls_files
from greenlane.exchange.tracking import TrackingState
from greenlane.store.models import InboxMessage, OutboxMessage, SeenMessage, StoredDocument
from greenlane.trust import lifecycle, pki, registry
from greenlane.trust.keys import OwnerKind
from greenlane.trust.messages import sign_message
from greenlane.trust.signers import write_private_key
from greenlane.trust.xmldsig import sign_enveloped
from tests.exchange import harness

WAIT = 15.0


@dataclass(frozen=True)
class ClientCert:
    cert_file: Path
    key_file: Path


@dataclass
class TlsCorridor:
    made: Scaffold
    az: NodeContext
    ru: NodeContext
    roots: list[x509.Certificate]


def tls_scaffold(directory: Path, delivery: tuple[Mode, Mode] = ("push", "push")) -> Scaffold:
    """A scaffolded corridor whose two endpoints are https."""
    made = harness.scaffold(directory, delivery=delivery)
    text = made.corridor_file.read_text(encoding="utf-8")
    assert text.count('endpoint = "http://127.0.0.1:') == 2
    made.corridor_file.write_text(text.replace('"http://127.0.0.1:', '"https://127.0.0.1:'))
    return made


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCorridor]:
    """Both nodes serving mutual TLS on loopback; AZ runs its delivery worker, RU only answers."""
    made = tls_scaffold(tmp_path_factory.mktemp("node-tls") / "corridor")
    az = harness.context(made, "az-node", tls_enabled=True)
    ru = harness.context(made, "ru-node", tls_enabled=True)
    assert az.peer("ru-node").endpoint.startswith("https://")
    with harness.serve(ru, background=False), harness.serve(az, background=True):
        yield TlsCorridor(made, az, ru, corridor_roots(ru))
    az.engine.dispose()
    ru.engine.dispose()


# -- clients and certificates ----------------------------------------------------------------


def tls_client(corridor: TlsCorridor, cert: ClientCert | None) -> httpx.Client:
    """A client trusting the corridor roots, presenting ``cert`` (or no certificate at all).

    Built by hand rather than with greenlane's client context, which would refuse
    to load a certificate that names no node (the agency case below).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # node certificates carry a URN, not a host name
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(
        cadata="".join(root.public_bytes(Encoding.PEM).decode() for root in corridor.roots)
    )
    if cert is not None:
        context.load_cert_chain(cert.cert_file, cert.key_file)
    return httpx.Client(verify=context, timeout=10, trust_env=False)


def node_cert(ctx: NodeContext) -> ClientCert:
    cert_file, key_file, password = node_tls_files(ctx)
    assert password is None  # the scaffold writes unencrypted development keys
    return ClientCert(cert_file, key_file)


def agency_cert(ctx: NodeContext, agency: str, directory: Path) -> ClientCert:
    """An agency's registered key and certificate: valid in the corridor, but not a node's."""
    with ctx.sessions() as session:
        row = registry.signing_key(session, agency)
    cert_file = directory / f"{agency}.pem"
    cert_file.write_text(row.certificate, encoding="ascii")
    assert row.provider_ref is not None
    return ClientCert(cert_file, Path(row.provider_ref))


def issued_cert(
    made: Scaffold, root_country: str, node: str, country: str, directory: Path
) -> ClientCert:
    """A node certificate naming ``node``, issued by ``root_country``'s real corridor root."""
    root_node = "az-node" if root_country == "AZ" else "ru-node"
    key_file, cert_file = lifecycle.root_paths(made.nodes[root_node] / "keys", root_country)
    root = lifecycle.load_root_ca(key_file, cert_file, None)
    key = pki.generate_key()
    owner = pki.Owner(country, OwnerKind.NODE, node, node)
    certificate = root.issue(key.public_key(), owner, datetime.now(UTC))
    name = f"{node}-by-{root_country}"
    (directory / f"{name}.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    write_private_key(directory / f"{name}.key.pem", key, None)
    return ClientCert(directory / f"{name}.pem", directory / f"{name}.key.pem")


def envelope_from_az(az: NodeContext, number: str) -> tuple[bytes, str]:
    """An envelope for RU and a fresh attempt signature, both exactly as the AZ node makes them."""
    with az.sessions() as session:
        payload = sign_enveloped(harness.certificate_xml(number), az.signer(session, "az-fsa"))
        signer = az.signer(session, "az-node")
    envelope = make_envelope(
        from_country="AZ",
        to_country="RU",
        sender_node="az-node",
        receiver_node="ru-node",
        document_type="851",
        document_status="70",
        document_number=number,
        payload=payload,
        media_type="application/xml",
        created_at=az.clock(),
        types=az.types,
    )
    encoded = encode(envelope, payload)
    return encoded, sign_attempt(signer, envelope, encoded, attempt_at=az.clock())


def push(client: httpx.Client, corridor: TlsCorridor, encoded: bytes, token: str) -> httpx.Response:
    return client.post(
        f"{corridor.ru.entry.endpoint}{peers.API}/envelopes",
        content=encoded,
        headers={peers.SIGNATURE_HEADER: token, "Content-Type": peers.ENVELOPE_MEDIA_TYPE},
    )


def ru_rows(corridor: TlsCorridor) -> tuple[int, ...]:
    with corridor.ru.sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (StoredDocument, InboxMessage, SeenMessage)
        )


# -- tests -----------------------------------------------------------------------------------


def test_a_certificate_delivered_over_mutual_tls_ends_delivered(corridor: TlsCorridor) -> None:
    """AZ's worker pushes over mutual TLS and records RU's verified receipt: Delivered."""
    az = corridor.az
    with az.sessions() as session, session.begin():
        issued = outbound.submit(
            session, az, agency="az-fsa", raw=harness.certificate_xml("AZ-TLS-1")
        )
        assert issued.message is not None
        message_id = issued.message.message_id
    az.wake.set()

    def state() -> str:
        with az.sessions() as session:
            row = session.scalar(
                select(OutboxMessage).where(OutboxMessage.message_id == message_id)
            )
            assert row is not None
            return row.state

    harness.wait_for(lambda: state() != TrackingState.PENDING_DELIVERY.value, WAIT)
    assert state() == TrackingState.DELIVERED.value
    with corridor.ru.sessions() as session:
        arrived = session.scalar(select(InboxMessage).where(InboxMessage.message_id == message_id))
        assert arrived is not None
        assert arrived.state == TrackingState.DELIVERED.value


WRONG_PEERS = ["ru-node's own certificate", "an AZ agency's certificate", "a third AZ node"]
WRONG_PEERS += ["az-node's name issued by the RU root"]


def wrong_cert(case: str, corridor: TlsCorridor, directory: Path) -> ClientCert:
    if case == "ru-node's own certificate":
        return node_cert(corridor.ru)
    if case == "an AZ agency's certificate":
        return agency_cert(corridor.az, "az-fsa", directory)
    if case == "a third AZ node":
        return issued_cert(corridor.made, "AZ", "az-node-2", "AZ", directory)
    return issued_cert(corridor.made, "RU", "az-node", "AZ", directory)


@pytest.mark.parametrize("case", WRONG_PEERS)
def test_a_valid_corridor_certificate_of_the_wrong_node_is_refused(
    case: str, corridor: TlsCorridor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An envelope signed by az-node over a connection whose certificate is not az-node's: 403."""
    caplog.set_level(logging.WARNING, logger="greenlane.security")
    encoded, token = envelope_from_az(corridor.az, f"AZ-TLS-{uuid.uuid4().hex[:8]}")
    before = ru_rows(corridor)
    with tls_client(corridor, wrong_cert(case, corridor, tmp_path)) as client:
        response = push(client, corridor, encoded, token)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "tls.wrong-peer"
    assert ru_rows(corridor) == before
    lines = [r.getMessage() for r in caplog.records if r.name == "greenlane.security"]
    assert any("code=tls.wrong-peer" in line for line in lines), lines
    # The very same envelope and signature over AZ's own certificate is accepted.
    with tls_client(corridor, node_cert(corridor.az)) as client:
        accepted = push(client, corridor, encoded, token)
    assert accepted.status_code == 200, accepted.text
    assert hashlib.sha256(encoded).hexdigest() in accepted.text


def test_a_signed_node_request_over_another_nodes_certificate_is_refused(
    corridor: TlsCorridor,
) -> None:
    """A tracking request signed by az-node is answered over AZ's certificate, not over RU's."""
    target = f"{peers.API}/envelopes/{uuid.uuid4()}/tracking"
    with corridor.az.sessions() as session:
        signer = corridor.az.signer(session, "az-node")

    def ask(cert: ClientCert) -> httpx.Response:
        token = sign_message(
            signer,
            sender="az-node",
            message_id=str(uuid.uuid4()),
            body=peers.request_body("GET", target),
            attempt_at=corridor.az.clock(),
        )
        with tls_client(corridor, cert) as client:
            return client.get(
                corridor.ru.entry.endpoint + target, headers={peers.SIGNATURE_HEADER: token}
            )

    refused = ask(node_cert(corridor.ru))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "tls.wrong-peer"
    answered = ask(node_cert(corridor.az))
    assert answered.status_code == 200, answered.text
    assert answered.json()["HUBTrackingInfo"] == "EnvelopeNotExists"


def test_a_client_without_a_certificate_cannot_connect(corridor: TlsCorridor) -> None:
    """No client certificate, or no TLS at all: the connection fails and nothing is stored."""
    encoded, token = envelope_from_az(corridor.az, "AZ-TLS-NOCERT")
    before = ru_rows(corridor)
    with tls_client(corridor, None) as client, pytest.raises(httpx.TransportError):
        push(client, corridor, encoded, token)
    plain = corridor.ru.entry.endpoint.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{plain}{peers.API}/envelopes",
            content=encoded,
            headers={peers.SIGNATURE_HEADER: token},
            timeout=10,
            trust_env=False,
        )
    assert ru_rows(corridor) == before


@contextmanager
def serve_with_certificate(ctx: NodeContext, cert: ClientCert) -> Iterator[None]:
    """A node's real app on its endpoint, but presenting ``cert`` as its TLS server certificate."""
    port = httpx.URL(ctx.entry.endpoint).port
    assert port is not None
    config = uvicorn.Config(
        create_app(ctx, background=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **uvicorn_config_kwargs(cert.cert_file, cert.key_file, None, corridor_roots(ctx)),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the impostor server did not start"
        assert thread.is_alive(), "the impostor server stopped"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(15)


IMPOSTORS = {
    "ru-node's name issued by the AZ root": ("AZ", "ru-node", "RU"),
    "another RU node": ("RU", "ru-node-2", "RU"),
}


@pytest.mark.parametrize("case", list(IMPOSTORS))
def test_the_sender_refuses_a_server_that_is_not_the_receiving_node(
    case: str, tmp_path: Path
) -> None:
    """AZ's delivery client will not hand an envelope to a server without RU's own certificate."""
    made = tls_scaffold(tmp_path / "corridor")
    az = harness.context(made, "az-node", tls_enabled=True, delivery_max_attempts=1)
    ru = harness.context(made, "ru-node", tls_enabled=True)
    root_country, node, country = IMPOSTORS[case]
    impostor = issued_cert(made, root_country, node, country, tmp_path)
    with az.sessions() as session, session.begin():
        issued = outbound.submit(
            session, az, agency="az-fsa", raw=harness.certificate_xml("AZ-TLS-IMPOSTOR")
        )
        assert issued.message is not None
        outbox_id = issued.message.id
    with serve_with_certificate(ru, impostor), peers.client(az) as client:
        assert delivery.claim(az) == [outbox_id]
        outcome = delivery.send(az, client, outbox_id)
    assert outcome.state is TrackingState.FAILED_DELIVERY
    assert outcome.error is not None
    assert "tls.wrong-peer" in outcome.error
    with ru.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SeenMessage)) == 0
    az.engine.dispose()
    ru.engine.dispose()


def test_a_pulling_node_pulls_over_mutual_tls_and_only_from_the_real_sender(
    tmp_path: Path,
) -> None:
    """RU pulls from AZ over mutual TLS; a server without AZ's own certificate gets nothing."""
    made = tls_scaffold(tmp_path / "corridor", delivery=("push", "pull"))
    az = harness.context(made, "az-node", tls_enabled=True)
    ru = harness.context(made, "ru-node", tls_enabled=True)
    with az.sessions() as session, session.begin():
        issued = outbound.submit(
            session, az, agency="az-fsa", raw=harness.certificate_xml("AZ-TLS-PULL")
        )
        assert issued.message is not None
        message_id = issued.message.message_id
    impostor = issued_cert(made, "RU", "az-node", "AZ", tmp_path)
    # Each poller is stopped inside its server's block: an idle TLS keep-alive connection
    # would otherwise hold up the server's shutdown.
    with serve_with_certificate(az, impostor):
        poller = Poller(ru)
        try:
            assert poller.poll_once() == []
        finally:
            poller.stop()
    with ru.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SeenMessage)) == 0
    with harness.serve(az, background=False):
        poller = Poller(ru)
        try:
            pulled = poller.poll_once()
        finally:
            poller.stop()
    assert [(p.message_id, p.tracking, p.error) for p in pulled] == [
        (message_id, TrackingState.DELIVERED, None)
    ]
    with az.sessions() as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        assert row is not None
        assert row.state == TrackingState.DELIVERED.value
    az.engine.dispose()
    ru.engine.dispose()
