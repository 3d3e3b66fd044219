"""The receiving node keeps what arrived as proof: the envelope bytes and the sender's signature."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from greenlane.exchange.envelope import decode
from greenlane.store.models import InboxMessage, StoredDocument
from greenlane.trust.messages import verify_message
from greenlane.trust.registry import DatabaseKeys
from tests.exchange import harness
from tests.exchange.conftest import Pair


def test_the_inbox_keeps_the_envelope_and_the_signature_that_proves_who_sent_it(
    pair: Pair,
) -> None:
    """The stored envelope hashes to its digest and its stored JWS verifies under az-node."""
    az = pair.agency("az-fsa")
    created = az.post(
        "/api/v1/certificates",
        content=harness.certificate_xml("AZ-2026-770001"),
        headers={"Content-Type": "application/xml"},
    )
    assert created.status_code == 201, created.text
    ru = pair.node("ru-node").ctx

    def stored() -> InboxMessage | None:
        with ru.sessions() as session:
            return session.scalar(
                select(InboxMessage).where(InboxMessage.document_number == "AZ-2026-770001")
            )

    row = harness.wait_for(stored)
    assert hashlib.sha256(row.envelope).hexdigest() == row.envelope_sha256
    with ru.sessions() as session:
        message = verify_message(
            row.token, row.envelope, keys=DatabaseKeys(session), recorded_at=row.received_at
        )
        document = session.get(StoredDocument, row.document_id)
        assert document is not None
    assert message.sender == "az-node"
    assert message.message_id == row.message_id
    _, payload = decode(row.envelope)
    assert payload == document.raw
