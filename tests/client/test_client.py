"""The Python client against two real nodes: submit, status, lists, withdraw, replace, errors."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from greenlane.cli import demo_certificates
from greenlane.client import (
    Certificate,
    GreenlaneAPIError,
    GreenlaneClient,
    GreenlaneTransportError,
)
from tests.client.conftest import Nodes
from tests.exchange import harness
from tests.faults.proxy import FaultProxy, Faults

WAIT = 10.0


def port_of(url: str) -> int:
    port = httpx.URL(url).port
    assert port is not None
    return port


class Recording(httpx.HTTPTransport):
    """The real HTTP transport, noting each request's Idempotency-Key and each answer's replay."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str | None] = []
        self.replayed: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        response = super().handle_request(request)
        self.replayed.append(response.headers.get("Idempotent-Replayed"))
        return response


def delivered(client: GreenlaneClient, certificate_id: int) -> Certificate:
    """The certificate once its last envelope is Delivered at the sender."""
    found: Certificate = harness.wait_for(
        lambda: (c := client.status(certificate_id)).tracking == "Delivered" and c, WAIT
    )
    return found


def received(client: GreenlaneClient, number: str, status: str) -> Certificate:
    """The received certificate ``number`` once it shows ``status`` at the client's node."""

    def arrived() -> Certificate | None:
        page = client.list(direction="received", number=number)
        return next((c for c in page.certificates if c.status == status), None)

    found: Certificate = harness.wait_for(arrived, WAIT)
    return found


def test_submitted_certificate_is_delivered_and_reads_back(nodes: Nodes) -> None:
    """submit() queues it, status() sees it Delivered, and RU lists and serves the same bytes."""
    with nodes.client("az-fsa") as fsa, nodes.client("ru-rsn") as rsn:
        submitted = fsa.submit(harness.certificate_xml("AZ-CLI-0001"))
        assert (submitted.direction, submitted.number, submitted.status) == (
            "issued",
            "AZ-CLI-0001",
            "70",
        )
        assert [m.to for m in submitted.messages] == ["ru-node"]
        done = delivered(fsa, submitted.id)
        assert done.messages[0].delivery_number is not None
        assert done.messages[0].delivered_at is not None

        form = demo_certificates.certificate(demo_certificates.LOTS[1])
        form["SPSCertificate"]["SPSExchangedDocument"]["ID"] = "AZ-CLI-0002"
        second = fsa.submit(json_form=form)
        assert second.number == "AZ-CLI-0002"

        issued = [c.number for c in fsa.iter_certificates(direction="issued", page_size=1)]
        assert {"AZ-CLI-0001", "AZ-CLI-0002"} <= set(issued)
        assert len(issued) == len(set(issued))

        at_ru = received(rsn, "AZ-CLI-0001", "70")
        assert rsn.get_document(at_ru.id) == fsa.get_document(submitted.id)
        assert rsn.status(at_ru.id).arrivals[0].from_node == "az-node"
        arrivals = {a.number: a for a in rsn.arrivals()}
        assert arrivals["AZ-CLI-0001"].certificate_id == at_ru.id
        assert not arrivals["AZ-CLI-0001"].quarantined


def test_submit_whose_answer_is_lost_issues_one_certificate(nodes: Nodes) -> None:
    """The first answer is dropped by a real proxy; the retry with the same key gets it back."""
    with FaultProxy(port_of(nodes.az.url), Faults(drop_response=1.0)) as proxy:
        healed = threading.Event()

        def heal_after_first_connection() -> None:
            deadline = time.monotonic() + WAIT
            while proxy.stats.connections < 1 and time.monotonic() < deadline:
                time.sleep(0.002)
            proxy.set_faults(Faults())
            healed.set()

        watcher = threading.Thread(target=heal_after_first_connection, daemon=True)
        watcher.start()
        token = nodes.made.tokens("az-node")["az-fsa"]
        recording = Recording()
        url = f"http://127.0.0.1:{proxy.port}"
        with GreenlaneClient(url, token, backoff=0.3, transport=recording) as client:
            submitted = client.submit(harness.certificate_xml("AZ-CLI-0010"))
        watcher.join(WAIT)
        assert healed.is_set()
        assert proxy.history[:2] == ["drop_response", "pass"]
        assert len(recording.keys) == 2
        assert recording.keys[0] == recording.keys[1] is not None
        assert recording.replayed == ["true"]  # the second answer is the first one, stored

    with nodes.client("az-fsa") as fsa:
        page = fsa.list(direction="issued", number="AZ-CLI-0010")
        assert [c.id for c in page.certificates] == [submitted.id]
        assert len(fsa.status(submitted.id).messages) == 1
        delivered(fsa, submitted.id)


def test_withdraw_and_replace_through_the_client(nodes: Nodes) -> None:
    """replace() supersedes the old one, withdraw() sets 40, and RU shows both in the end."""
    with nodes.client("az-fsa") as fsa, nodes.client("ru-rsn") as rsn:
        old = fsa.submit(harness.certificate_xml("AZ-CLI-0100", lot=2))
        delivered(fsa, old.id)
        new = fsa.replace(
            old.id, "net weight corrected", xml=harness.certificate_xml("AZ-CLI-0101", lot=2)
        )
        assert (new.number, new.replaces) == ("AZ-CLI-0101", "AZ-CLI-0100")
        assert new.superseded is not None
        assert (new.superseded.status, new.superseded.replaced_by) == ("superseded", "AZ-CLI-0101")
        delivered(fsa, new.id)

        withdrawn = fsa.withdraw(new.id, "consignment lost", idempotency_key="withdraw-0101")
        assert withdrawn.status == "40"
        again = fsa.withdraw(new.id, "consignment lost", idempotency_key="withdraw-0101")
        assert again.id == withdrawn.id
        assert again.status == "40"
        with pytest.raises(GreenlaneAPIError) as final:
            fsa.withdraw(new.id, "consignment lost")
        assert (final.value.code, final.value.status) == ("certificate.final", 409)

        received(rsn, "AZ-CLI-0101", "40")
        assert received(rsn, "AZ-CLI-0100", "superseded").replaced_by == "AZ-CLI-0101"


def test_errors_carry_the_node_code_status_and_findings(nodes: Nodes) -> None:
    """Bad token, unknown id, unreadable XML and a reused key each raise GreenlaneAPIError."""
    with GreenlaneClient(nodes.az.url, "glt_not-a-token") as stranger:
        with pytest.raises(GreenlaneAPIError) as bad_token:
            stranger.list()
        assert (bad_token.value.code, bad_token.value.status) == ("auth.invalid", 401)

    with nodes.client("az-fsa") as fsa:
        with pytest.raises(GreenlaneAPIError) as unknown:
            fsa.status(10**9)
        assert (unknown.value.code, unknown.value.status) == ("certificate.not-found", 404)

        with pytest.raises(GreenlaneAPIError) as unreadable:
            fsa.submit(b"<not-a-certificate")
        assert unreadable.value.code == "certificate.unreadable"
        assert unreadable.value.status == 422

        fsa.submit(harness.certificate_xml("AZ-CLI-0200"), idempotency_key="key-0200")
        with pytest.raises(GreenlaneAPIError) as reused:
            fsa.submit(harness.certificate_xml("AZ-CLI-0201"), idempotency_key="key-0200")
        assert reused.value.code == "idempotency.key-reused"

        with pytest.raises(ValueError, match="exactly one"):
            fsa.submit(b"<x/>", json_form={})


def test_invalid_certificate_error_lists_its_findings(nodes: Nodes) -> None:
    """A certificate that fails its rules is refused with its findings, typed."""
    form = demo_certificates.certificate(demo_certificates.LOTS[0])
    form["SPSCertificate"]["SPSExchangedDocument"]["ID"] = "AZ-CLI-0300"
    form["SPSCertificate"]["SPSExchangedDocument"]["IssueDateTime"] = {
        "DateTimeString": "2999-01-01T00:00:00Z"
    }
    with nodes.client("az-fsa") as fsa, pytest.raises(GreenlaneAPIError) as invalid:
        fsa.submit(json_form=form)
    assert invalid.value.code == "certificate.invalid"
    assert any(f.level == "error" and f.code for f in invalid.value.findings)


def test_only_gateway_errors_and_lost_connections_are_retried(nodes: Nodes) -> None:
    """A 502 from a real proxy is retried then raised; a closed port raises a transport error."""
    with FaultProxy(port_of(nodes.az.url), Faults(http_502=1.0)) as proxy:
        token = nodes.made.tokens("az-node")["az-fsa"]
        client = GreenlaneClient(f"http://127.0.0.1:{proxy.port}", token, retries=2, backoff=0.01)
        with client, pytest.raises(GreenlaneAPIError) as gateway:
            client.list()
        assert (gateway.value.code, gateway.value.status) == ("http.502", 502)
        assert proxy.stats.http_502 == 3

    closed = f"http://127.0.0.1:{harness.free_port()}"
    nobody = GreenlaneClient(closed, "glt_x", retries=1, backoff=0.01)
    with nobody, pytest.raises(GreenlaneTransportError, match="2 attempts"):
        nobody.list()
