"""Certificates travelling between two real nodes on loopback: issue, withdraw, replace, veterinary.

Every test drives the agency API of a running AZ node and reads the outcome
through the agency API of a running RU node; the delivery worker pushes in
the background, so each wait is bounded by :func:`harness.wait_for`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from greenlane.cli import demo_certificates
from greenlane.exchange import certificates, outbound
from greenlane.exchange.tracking import CertificateStatus, StatusMove, status_move
from greenlane.sps.identity import RAM
from greenlane.store import migrate
from greenlane.store.documents import add_document
from greenlane.store.engine import make_engine, session_factory
from greenlane.store.models import Certificate, OutboxMessage, StoredDocument
from tests.exchange import harness
from tests.exchange.conftest import Pair, running_pair

XML = {"content-type": "application/xml"}
DSIG = "http://www.w3.org/2000/09/xmldsig#"
WAIT = 10.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """One running corridor for the module: each test uses certificate numbers of its own."""
    with running_pair(tmp_path_factory.mktemp("flows") / "corridor") as running:
        yield running


def submit_xml(client: httpx.Client, number: str, lot: int = 0) -> dict[str, Any]:
    response = client.post(
        "/api/v1/certificates", content=harness.certificate_xml(number, lot=lot), headers=XML
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def all_delivered(client: httpx.Client, certificate_id: int, messages: int) -> dict[str, Any]:
    """The certificate once ``messages`` messages of it are all Delivered at the sender."""

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/certificates/{certificate_id}").json()
        states = [m["tracking"] for m in body["messages"]]
        return body if states == ["Delivered"] * messages else None

    found: dict[str, Any] = harness.wait_for(done, WAIT)
    return found


def received(client: httpx.Client, number: str, **expect: Any) -> dict[str, Any]:
    """The received certificate ``number`` at the client's node, once it shows ``expect``."""

    def arrived() -> dict[str, Any] | None:
        page = client.get(
            "/api/v1/certificates", params={"direction": "received", "number": number}
        ).json()
        for row in page["certificates"]:
            if all(row[k] == v for k, v in expect.items()):
                return dict(row)
        return None

    found: dict[str, Any] = harness.wait_for(arrived, WAIT)
    return found


def document(client: httpx.Client, certificate_id: int) -> bytes:
    response = client.get(f"/api/v1/certificates/{certificate_id}/document")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return response.content


def notes(xml: bytes) -> dict[str, str]:
    root = etree.fromstring(xml)
    found: dict[str, str] = {}
    for note in root.iter(f"{{{RAM}}}IncludedSPSNote"):
        subject = note.findtext(f"{{{RAM}}}Subject")
        content = note.findtext(f"{{{RAM}}}Content")
        assert subject is not None
        assert content is not None
        found[subject] = content
    return found


def signatures(xml: bytes) -> list[str | None]:
    """The SignatureValue of each enveloped signature."""
    root = etree.fromstring(xml)
    return [s.findtext(f"{{{DSIG}}}SignatureValue") for s in root.findall(f"{{{DSIG}}}Signature")]


def status_code_of(xml: bytes) -> str | None:
    return etree.fromstring(xml).findtext(f".//{{{RAM}}}StatusCode")


def test_xml_certificate_is_delivered_and_stored_byte_identical_at_ru(pair: Pair) -> None:
    """An XML submit is 201, Delivered at AZ with a delivery number, and the same bytes at RU."""
    fsa, rsn = pair.agency("az-fsa"), pair.agency("ru-rsn")
    submitted = submit_xml(fsa, "AZ-FLOW-0001")
    assert submitted["status"] == "70"
    assert submitted["direction"] == "issued"
    assert [m["to"] for m in submitted["messages"]] == ["ru-node"]

    sent = all_delivered(fsa, submitted["id"], 1)
    assert sent["tracking"] == "Delivered"
    assert isinstance(sent["messages"][0]["delivery_number"], int)

    at_ru = received(rsn, "AZ-FLOW-0001")
    assert at_ru["status"] == "70"
    assert at_ru["issuer_country"] == "AZ"
    arrivals = rsn.get("/api/v1/arrivals", params={"limit": 500}).json()["arrivals"]
    (arrival,) = [a for a in arrivals if a["number"] == "AZ-FLOW-0001"]
    assert arrival["delivery_number"] == sent["messages"][0]["delivery_number"]
    assert arrival["message_id"] == sent["messages"][0]["message_id"]
    assert arrival["tracking"] == "Delivered"
    assert arrival["quarantined"] is False
    assert arrival["certificate_id"] == at_ru["id"]

    signed = document(fsa, submitted["id"])
    assert b"Signature" in signed
    assert document(rsn, at_ru["id"]) == signed


def test_json_form_certificate_travels_the_same_path(pair: Pair) -> None:
    """A certificate in the JSON form is written as XML, signed, delivered and stored at RU."""
    fsa, rsn = pair.agency("az-fsa"), pair.agency("ru-rsn")
    lot = demo_certificates.LOTS[1]
    response = fsa.post("/api/v1/certificates", json=demo_certificates.certificate(lot))
    assert response.status_code == 201, response.text
    submitted = response.json()
    assert submitted["number"] == lot.number

    all_delivered(fsa, submitted["id"], 1)
    at_ru = received(rsn, lot.number, status="70")
    signed = document(fsa, submitted["id"])
    assert document(rsn, at_ru["id"]) == signed
    root = etree.fromstring(signed)
    assert root.findtext(f".//{{{RAM}}}ID") == lot.number


def test_withdrawal_is_signed_again_delivered_and_final(pair: Pair) -> None:
    """Withdraw sends a re-signed status-40 document; both sides show 40; a second one is 409."""
    fsa, rsn = pair.agency("az-fsa"), pair.agency("ru-rsn")
    submitted = submit_xml(fsa, "AZ-FLOW-0040")
    all_delivered(fsa, submitted["id"], 1)
    issued_doc = document(fsa, submitted["id"])

    response = fsa.post(
        f"/api/v1/certificates/{submitted['id']}/withdraw", json={"reason": "consignment lost"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "40"

    sent = all_delivered(fsa, submitted["id"], 2)
    assert [m["status"] for m in sent["messages"]] == ["70", "40"]
    assert sent["status"] == "40"
    withdrawn_doc = document(fsa, submitted["id"])
    assert status_code_of(issued_doc) == "70"
    assert status_code_of(withdrawn_doc) == "40"
    assert len(signatures(withdrawn_doc)) == 1
    assert signatures(withdrawn_doc) != signatures(issued_doc)

    at_ru = received(rsn, "AZ-FLOW-0040", status="40")
    assert document(rsn, at_ru["id"]) == withdrawn_doc

    again = fsa.post(f"/api/v1/certificates/{submitted['id']}/withdraw", json={"reason": "again"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "certificate.final"
    assert len(fsa.get(f"/api/v1/certificates/{submitted['id']}").json()["messages"]) == 2


def test_late_issued_message_does_not_revive_a_withdrawn_certificate(pair: Pair) -> None:
    """A status-70 message that reaches RU after the withdrawal is receipted but RU keeps 40."""
    fsa, rsn = pair.agency("az-fsa"), pair.agency("ru-rsn")
    submitted = submit_xml(fsa, "AZ-FLOW-0041")
    all_delivered(fsa, submitted["id"], 1)
    fsa.post(f"/api/v1/certificates/{submitted['id']}/withdraw", json={"reason": "recalled"})
    all_delivered(fsa, submitted["id"], 2)
    at_ru = received(rsn, "AZ-FLOW-0041", status="40")
    withdrawn_doc = document(rsn, at_ru["id"])

    ctx = pair.az.ctx
    with ctx.sessions() as session, session.begin():
        row = session.get(Certificate, submitted["id"])
        assert row is not None
        first = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.certificate_id == row.id, OutboxMessage.document_status == "70"
            )
        )
        assert first is not None
        issued = session.get(StoredDocument, first.document_id)
        assert issued is not None
        late = outbound.enqueue(session, ctx, row, issued.raw, "70", ctx.clock())
        late_id = late.message_id
    ctx.wake.set()

    all_delivered(fsa, submitted["id"], 3)
    arrivals = rsn.get("/api/v1/arrivals", params={"limit": 500}).json()["arrivals"]
    (late_arrival,) = [a for a in arrivals if a["message_id"] == late_id]
    assert late_arrival["status"] == "70"
    assert late_arrival["tracking"] == "Delivered"
    now_at_ru = rsn.get(f"/api/v1/certificates/{at_ru['id']}").json()
    assert now_at_ru["status"] == "40"
    assert document(rsn, at_ru["id"]) == withdrawn_doc
    assert fsa.get(f"/api/v1/certificates/{submitted['id']}").json()["status"] == "40"


def test_replacement_carries_the_notes_and_supersedes_on_both_sides(pair: Pair) -> None:
    """Replace adds ADRP/ADRPN/ADRPR/ADRD; the old certificate is superseded at AZ and at RU."""
    fsa, rsn = pair.agency("az-fsa"), pair.agency("ru-rsn")
    old = submit_xml(fsa, "AZ-FLOW-0100", lot=2)
    all_delivered(fsa, old["id"], 1)
    old_issued = etree.fromstring(document(fsa, old["id"])).findtext(f".//{{{RAM}}}IssueDateTime/*")

    response = fsa.post(
        f"/api/v1/certificates/{old['id']}/replace",
        json={
            "reason": "net weight corrected",
            "certificate_xml": harness.certificate_xml("AZ-FLOW-0101", lot=2).decode(),
        },
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["number"] == "AZ-FLOW-0101"
    assert new["replaces"] == "AZ-FLOW-0100"
    assert new["superseded"]["status"] == "superseded"
    assert new["superseded"]["replaced_by"] == "AZ-FLOW-0101"
    all_delivered(fsa, new["id"], 1)

    old_at_az = fsa.get(f"/api/v1/certificates/{old['id']}").json()
    assert (old_at_az["status"], old_at_az["replaced_by"]) == ("superseded", "AZ-FLOW-0101")
    new_at_ru = received(rsn, "AZ-FLOW-0101", status="70")
    assert new_at_ru["replaces"] == "AZ-FLOW-0100"
    old_at_ru = received(rsn, "AZ-FLOW-0100")
    assert (old_at_ru["status"], old_at_ru["replaced_by"]) == ("superseded", "AZ-FLOW-0101")

    xml_at_ru = document(rsn, new_at_ru["id"])
    assert xml_at_ru == document(fsa, new["id"])
    found = notes(xml_at_ru)
    assert found["ADRPN"] == "AZ-FLOW-0100"
    assert found["ADRPR"] == "net weight corrected"
    assert found["ADRD"] == old_issued
    assert "AZ-FLOW-0100" in found["ADRP"]

    same_number = fsa.post(
        f"/api/v1/certificates/{new['id']}/replace",
        json={
            "reason": "again",
            "certificate_xml": harness.certificate_xml("AZ-FLOW-0101", lot=2).decode(),
        },
    )
    assert same_number.status_code == 409
    assert same_number.json()["error"]["code"] == "certificate.number-taken"
    superseded_again = fsa.post(
        f"/api/v1/certificates/{old['id']}/replace",
        json={
            "reason": "again",
            "certificate_xml": harness.certificate_xml("AZ-FLOW-0102", lot=2).decode(),
        },
    )
    assert superseded_again.status_code == 409
    assert superseded_again.json()["error"]["code"] == "certificate.final"


def test_replacement_in_the_json_form(pair: Pair) -> None:
    """A replacement given in the JSON form is delivered with the notes too."""
    fsa, rsn = pair.agency("az-fsa"), pair.agency("ru-rsn")
    old = submit_xml(fsa, "AZ-FLOW-0200", lot=3)
    form = demo_certificates.certificate(demo_certificates.LOTS[3])
    form["SPSCertificate"]["SPSExchangedDocument"]["ID"] = "AZ-FLOW-0201"
    response = fsa.post(
        f"/api/v1/certificates/{old['id']}/replace",
        json={"reason": "seal number corrected", "certificate": form},
    )
    assert response.status_code == 201, response.text
    all_delivered(fsa, response.json()["id"], 1)
    at_ru = received(rsn, "AZ-FLOW-0201")
    assert notes(document(rsn, at_ru["id"]))["ADRPN"] == "AZ-FLOW-0200"
    received(rsn, "AZ-FLOW-0200", status="superseded", replaced_by="AZ-FLOW-0201")


def test_veterinary_certificate_reaches_the_veterinary_service_and_customs(pair: Pair) -> None:
    """An 853 travels like an ePhyto; RU's vet service and customs see it; others' ids are 404."""
    fsa, rsn, fcs = pair.agency("az-fsa"), pair.agency("ru-rsn"), pair.agency("ru-fcs")
    vet = submit_xml(fsa, "AZ-FLOW-V001", lot=5)
    phyto = submit_xml(fsa, "AZ-FLOW-0300", lot=0)
    assert vet["document_type"] == "853"
    all_delivered(fsa, vet["id"], 1)
    all_delivered(fsa, phyto["id"], 1)

    at_ru = received(rsn, "AZ-FLOW-V001", status="70")
    assert at_ru["document_type"] == "853"
    assert document(rsn, at_ru["id"]) == document(fsa, vet["id"])
    ours = {"AZ-FLOW-V001", "AZ-FLOW-0300"}
    for agency in (rsn, fcs):
        arrivals = agency.get("/api/v1/arrivals", params={"limit": 500}).json()["arrivals"]
        assert ours <= {a["number"] for a in arrivals}
        listed = agency.get(
            "/api/v1/certificates", params={"direction": "received", "limit": 500}
        ).json()["certificates"]
        assert ours <= {c["number"] for c in listed}
        assert agency.get(f"/api/v1/certificates/{at_ru['id']}").status_code == 200

    az_customs = pair.agency("az-customs")
    for path in (f"/api/v1/certificates/{vet['id']}", f"/api/v1/certificates/{vet['id']}/document"):
        hidden = az_customs.get(path)
        assert hidden.status_code == 404
        assert hidden.json() == {
            "error": {"code": "certificate.not-found", "message": f"no certificate {vet['id']}"}
        }
    assert az_customs.get("/api/v1/certificates").json()["certificates"] == []
    refused = az_customs.post(f"/api/v1/certificates/{vet['id']}/withdraw", json={"reason": "x"})
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "certificate.not-found"


def events(client: httpx.Client, after: int, limit: int = 100) -> dict[str, Any]:
    response = client.get("/api/v1/events", params={"after": after, "limit": limit})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_event_feed_shows_received_and_delivered_in_order_and_pages(pair: Pair) -> None:
    """RU's feed lists each arrival, AZ's each delivery, in id order; next_after pages both."""
    fsa, rsn, az_customs = pair.agency("az-fsa"), pair.agency("ru-rsn"), pair.agency("az-customs")
    start_ru, start_az = events(rsn, 0, 500)["next_after"], events(fsa, 0, 500)["next_after"]
    start_customs = events(az_customs, 0, 500)["next_after"]
    numbers = ["AZ-FLOW-E001", "AZ-FLOW-E002", "AZ-FLOW-E003"]
    ids = []
    for lot, number in enumerate(numbers):
        submitted = submit_xml(fsa, number, lot=lot)
        all_delivered(fsa, submitted["id"], 1)
        ids.append(submitted["id"])
    fsa.post(f"/api/v1/certificates/{ids[0]}/withdraw", json={"reason": "recalled"})
    all_delivered(fsa, ids[0], 2)
    harness.wait_for(lambda: len(events(rsn, start_ru)["events"]) == 4, WAIT)

    at_ru = events(rsn, start_ru)["events"]
    assert [e["kind"] for e in at_ru] == ["certificate.received"] * 4
    assert [(e["number"], e["status"]) for e in at_ru] == [
        *((n, "70") for n in numbers),
        (numbers[0], "40"),
    ]
    assert [e["id"] for e in at_ru] == sorted({e["id"] for e in at_ru})

    cursor, paged = start_ru, []
    for _ in range(10):
        page = events(rsn, cursor, limit=3)
        if not page["events"]:
            assert page["next_after"] == cursor
            break
        assert page["next_after"] == page["events"][-1]["id"]
        paged.extend(page["events"])
        cursor = page["next_after"]
    assert paged == at_ru

    at_az = events(fsa, start_az)["events"]
    assert [e["kind"] for e in at_az] == ["certificate.delivered"] * 4
    assert [e["certificate"]["number"] for e in at_az] == [*numbers, numbers[0]]
    assert [e["status"] for e in at_az] == ["70", "70", "70", "40"]
    assert all(e["tracking"] == "Delivered" for e in at_az)
    after_first = events(fsa, at_az[0]["id"])["events"]
    assert after_first == at_az[1:]

    hidden = events(az_customs, start_customs)
    assert hidden["events"] == []
    assert hidden["next_after"] == at_az[-1]["id"]


# Status moves on one store, without servers: what the flows above rely on.


@pytest.fixture
def store(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate.upgrade(engine)
    return session_factory(engine)


def _record(
    session: Session, number: str, status: CertificateStatus, replaces: str | None = None
) -> certificates.Recorded:
    raw = f"<version number='{number}' status='{status.value}'/>".encode()
    stored = add_document(session, raw=raw, document_type="851", number=number, findings=[])
    return certificates.record(
        session,
        direction="received",
        issuer="AZ",
        destination="RU",
        number=number,
        document_type="851",
        status=status,
        document_id=stored.id,
        at=datetime.now(UTC),
        replaces=replaces,
    )


def test_late_issue_is_stale_after_withdrawal(store: sessionmaker[Session]) -> None:
    """record() keeps a withdrawn certificate and its document when a late 70 comes in."""
    with store() as session, session.begin():
        _record(session, "AZ-1", CertificateStatus.ISSUED)
        withdrawn = _record(session, "AZ-1", CertificateStatus.WITHDRAWN)
        late = _record(session, "AZ-1", CertificateStatus.ISSUED)
        assert late.move is StatusMove.STALE
        assert late.certificate.status == "40"
        assert late.certificate.document_id == withdrawn.certificate.document_id
        assert late.duplicate_number is False
    assert status_move(CertificateStatus.SUPERSEDED, CertificateStatus.ISSUED) is StatusMove.STALE
    assert status_move(CertificateStatus.WITHDRAWN, CertificateStatus.SUPERSEDED) is (
        StatusMove.STALE
    )


def test_original_arriving_after_its_replacement_is_born_superseded(
    store: sessionmaker[Session],
) -> None:
    """Out of order, the replaced certificate still ends superseded and names its replacement."""
    with store() as session, session.begin():
        _record(session, "AZ-2", CertificateStatus.ISSUED, replaces="AZ-1")
        original = _record(session, "AZ-1", CertificateStatus.ISSUED)
        assert original.certificate.status == "superseded"
        assert original.certificate.replaced_by == "AZ-2"
        withdrawn_late = _record(session, "AZ-1", CertificateStatus.WITHDRAWN)
        assert withdrawn_late.move is StatusMove.STALE
        assert session.scalar(select(func.count()).select_from(Certificate)) == 2


def test_replacement_of_a_withdrawn_certificate_keeps_it_withdrawn(
    store: sessionmaker[Session],
) -> None:
    """A withdrawn certificate replaced later stays 40 but names its replacement."""
    with store() as session, session.begin():
        _record(session, "AZ-3", CertificateStatus.WITHDRAWN)
        replacement = _record(session, "AZ-4", CertificateStatus.ISSUED, replaces="AZ-3")
        assert replacement.superseded is not None
        assert replacement.superseded.status == "40"
        assert replacement.superseded.replaced_by == "AZ-4"
