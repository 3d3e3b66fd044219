"""The agencies' integration API: submit, read, withdraw and replace certificates; arrivals; events.

Authenticated per agency with a bearer token (``greenlane tokens add``). An
agency sees the certificates it issued and those that arrived for its
country in its field (an NPPO the phytosanitary ones, a veterinary service
the veterinary ones, customs all). Every write accepts an
``Idempotency-Key``: the same key with the same request returns the first
answer and changes nothing, so a retried submit never issues twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from greenlane.api.body import read_body
from greenlane.api.node import Ctx
from greenlane.errors import GreenlaneError
from greenlane.exchange import agencies, certificates, feed, outbound
from greenlane.exchange.context import NodeContext
from greenlane.store.models import (
    Certificate,
    IdempotencyKey,
    InboxMessage,
    OutboxMessage,
    StoredDocument,
)

router = APIRouter(prefix="/api/v1", tags=["agency"])

MAX_CERTIFICATE_BYTES = 4 * 1024 * 1024


def agency(request: Request, ctx: Ctx) -> str:
    """The agency whose bearer token the request carries."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise GreenlaneError(
            "send the agency's API token as `Authorization: Bearer <token>`", code="auth.missing"
        )
    with ctx.reads() as session:
        found = agencies.agency_for(session, token.strip())
    if found is None:
        raise GreenlaneError("the API token is unknown or revoked", code="auth.invalid")
    return found


Agency = Annotated[str, Depends(agency)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string; a retry with the same key and request returns the "
        "first answer and changes nothing.",
    ),
]


def _messages(session: Session, certificate_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.certificate_id == certificate_id)
        .order_by(OutboxMessage.id)
    )
    return [
        {
            "message_id": m.message_id,
            "to": m.receiver_node,
            "mode": m.mode,
            "status": m.document_status,
            "tracking": m.state,
            "attempts": m.attempts,
            "created_at": m.created_at.isoformat(),
            "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None,
            "delivery_number": m.delivery_number,
            "last_error": m.last_error,
        }
        for m in rows
    ]


def certificate_body(session: Session, row: Certificate) -> dict[str, Any]:
    body = certificates.view(row)
    if row.direction == "issued":
        body["messages"] = _messages(session, row.id)
        body["tracking"] = body["messages"][-1]["tracking"] if body["messages"] else None
    else:
        inbox = session.scalars(
            select(InboxMessage)
            .where(InboxMessage.certificate_id == row.id)
            .order_by(InboxMessage.id)
        )
        body["arrivals"] = [_arrival(m) for m in inbox]
    return body


def _arrival(row: InboxMessage) -> dict[str, Any]:
    return {
        "delivery_number": row.id,
        "message_id": row.message_id,
        "from": row.sender_node,
        "document_type": row.document_type,
        "status": row.document_status,
        "number": row.document_number,
        "tracking": row.state,
        "quarantined": row.quarantined,
        "duplicate_number": row.duplicate_number,
        "certificate_id": row.certificate_id,
        "received_at": row.received_at.isoformat(),
    }


def idempotent(
    ctx: NodeContext,
    agency_id: str,
    key: str | None,
    request_digest: str,
    run: Callable[[Session], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    """Run a write once per (agency, key); later calls with the key get the stored answer."""
    for attempt in range(2):
        try:
            with ctx.sessions() as session, session.begin():
                if key is not None:
                    stored = session.get(IdempotencyKey, (agency_id, key))
                    if stored is not None:
                        if stored.request_sha256 != request_digest:
                            raise GreenlaneError(
                                "this Idempotency-Key was used for another request",
                                code="idempotency.key-reused",
                            )
                        return JSONResponse(
                            json.loads(stored.response),
                            status_code=stored.status_code,
                            headers={"Idempotent-Replayed": "true"},
                        )
                status, body = run(session)
                if key is not None:
                    session.add(
                        IdempotencyKey(
                            agency=agency_id,
                            key=key,
                            request_sha256=request_digest,
                            status_code=status,
                            response=json.dumps(body).encode(),
                            created_at=ctx.clock(),
                        )
                    )
            ctx.wake.set()
            return JSONResponse(body, status_code=status)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def request_digest(*parts: bytes | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "big") + data)
    return sha.hexdigest()


def _certificate_xml(content_type: str, body: bytes) -> bytes:
    """The certificate as XML from an XML body or a JSON-form body."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/xml", "text/xml"):
        return body
    if media == "application/json":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise GreenlaneError(f"the body is not JSON: {exc}", code="request.invalid") from exc
        return _json_form_xml(data)
    raise GreenlaneError(
        f"send the certificate as application/xml or application/json, not {media or 'nothing'}",
        code="request.unsupported-media-type",
    )


def _json_form_xml(data: Any) -> bytes:
    from greenlane.sps.jsonform import from_json
    from greenlane.sps.writer import write_canonical

    return write_canonical(from_json(data))


_EXAMPLE_XML = {"application/xml": {"schema": {"type": "string"}}}


@router.post(
    "/certificates",
    status_code=201,
    summary="Submit a certificate (XML or the JSON form)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                **_EXAMPLE_XML,
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def submit_certificate(
    request: Request, ctx: Ctx, agency_id: Agency, key: IdempotencyKeyHeader = None
) -> JSONResponse:
    """Sign the certificate as the agency (unless it carries the agency's own valid
    signature), store it and queue it for the importing country's node.

    201 with the certificate and its tracking; 200 when the same certificate was
    already submitted. A certificate that fails its checks is refused with its findings.
    """
    body = await read_body(request, MAX_CERTIFICATE_BYTES)
    raw = _certificate_xml(request.headers.get("content-type", ""), body)

    def run(session: Session) -> tuple[int, dict[str, Any]]:
        issued = outbound.submit(session, ctx, agency=agency_id, raw=raw)
        return (201 if issued.message else 200), certificate_body(session, issued.certificate)

    return await run_in_threadpool(
        idempotent, ctx, agency_id, key, request_digest("submit", raw), run
    )


class Withdrawal(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Replacement(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    certificate_xml: str | None = Field(default=None, description="The new certificate, as XML")
    certificate: dict[str, Any] | None = Field(
        default=None, description="The new certificate, in the JSON form"
    )


@router.post("/certificates/{certificate_id}/withdraw", summary="Withdraw (status 40)")
async def withdraw_certificate(
    certificate_id: int,
    withdrawal: Withdrawal,
    ctx: Ctx,
    agency_id: Agency,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def run(session: Session) -> tuple[int, dict[str, Any]]:
        issued = outbound.withdraw(
            session, ctx, agency=agency_id, certificate_id=certificate_id, reason=withdrawal.reason
        )
        return 200, certificate_body(session, issued.certificate)

    digest = request_digest("withdraw", str(certificate_id), withdrawal.reason)
    return await run_in_threadpool(idempotent, ctx, agency_id, key, digest, run)


@router.post(
    "/certificates/{certificate_id}/replace",
    status_code=201,
    summary="Replace with a new certificate (ADRP, ADRPN, ADRPR, ADRD notes added)",
)
async def replace_certificate(
    certificate_id: int,
    replacement: Replacement,
    ctx: Ctx,
    agency_id: Agency,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    if (replacement.certificate_xml is None) == (replacement.certificate is None):
        raise GreenlaneError(
            "give the new certificate as exactly one of certificate_xml and certificate",
            code="request.invalid",
        )
    raw = (
        replacement.certificate_xml.encode()
        if replacement.certificate_xml is not None
        else _json_form_xml(replacement.certificate)
    )

    def run(session: Session) -> tuple[int, dict[str, Any]]:
        issued = outbound.replace(
            session,
            ctx,
            agency=agency_id,
            certificate_id=certificate_id,
            raw=raw,
            reason=replacement.reason,
        )
        body = certificate_body(session, issued.certificate)
        if issued.superseded is not None:
            body["superseded"] = certificates.view(issued.superseded)
        return 201, body

    digest = request_digest("replace", str(certificate_id), replacement.reason, raw)
    return await run_in_threadpool(idempotent, ctx, agency_id, key, digest, run)


def _get_visible(session: Session, agency_id: str, certificate_id: int) -> Certificate:
    row = session.get(Certificate, certificate_id)
    if row is None or not feed.may_see(feed.roles(session, agency_id), agency_id, row):
        raise GreenlaneError(f"no certificate {certificate_id}", code="certificate.not-found")
    return row


@router.get("/certificates/{certificate_id}", summary="A certificate, its status and tracking")
async def get_certificate(certificate_id: int, ctx: Ctx, agency_id: Agency) -> dict[str, Any]:
    def look() -> dict[str, Any]:
        with ctx.reads() as session:
            return certificate_body(session, _get_visible(session, agency_id, certificate_id))

    return await run_in_threadpool(look)


@router.get(
    "/certificates/{certificate_id}/document",
    summary="The certificate's current signed XML, byte for byte",
    responses={200: {"content": {"application/xml": {}}}},
)
async def get_document(certificate_id: int, ctx: Ctx, agency_id: Agency) -> Response:
    def look() -> bytes:
        with ctx.reads() as session:
            row = _get_visible(session, agency_id, certificate_id)
            document = session.get(StoredDocument, row.document_id)
            assert document is not None
            return document.raw

    return Response(await run_in_threadpool(look), media_type="application/xml")


@router.get("/certificates", summary="Certificates issued by this agency or arrived for it")
async def list_certificates(
    ctx: Ctx,
    agency_id: Agency,
    direction: Annotated[str | None, Query(pattern="^(issued|received)$")] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    number: Annotated[str | None, Query(max_length=256)] = None,
    after: Annotated[int, Query(ge=0, description="Only ids above this (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    def look() -> dict[str, Any]:
        with ctx.reads() as session:
            query = select(Certificate).where(Certificate.id > after).order_by(Certificate.id)
            if direction:
                query = query.where(Certificate.direction == direction)
            if status:
                query = query.where(Certificate.status == status)
            if number:
                query = query.where(Certificate.number == number)
            held = feed.roles(session, agency_id)
            items: list[dict[str, Any]] = []
            # The cursor moves past rows the agency may not see too: a page of
            # nothing but others' certificates must not look like the end.
            last = after
            for row in session.scalars(query.limit(limit * 4)):
                last = row.id
                if feed.may_see(held, agency_id, row):
                    items.append(certificates.view(row))
                    if len(items) == limit:
                        break
            return {"certificates": items, "next_after": last}

    return await run_in_threadpool(look)


@router.get("/arrivals", summary="Everything that arrived for this country, quarantine included")
async def list_arrivals(
    ctx: Ctx,
    agency_id: Agency,
    after: Annotated[int, Query(ge=0, description="Delivery numbers above this")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    quarantined: bool | None = None,
) -> dict[str, Any]:
    def look() -> dict[str, Any]:
        with ctx.reads() as session:
            roles = feed.roles(session, agency_id)
            query = select(InboxMessage).where(InboxMessage.id > after).order_by(InboxMessage.id)
            if quarantined is not None:
                query = query.where(InboxMessage.quarantined == quarantined)
            items = []
            last = after
            for row in session.scalars(query.limit(limit)):
                last = row.id
                if certificates.in_field(roles, row.document_type):
                    arrival = _arrival(row)
                    document = session.get(StoredDocument, row.document_id)
                    if row.quarantined and document is not None:
                        arrival["findings"] = [
                            {
                                "level": f.level,
                                "area": f.area,
                                "path": f.path,
                                "code": f.code,
                                "message": f.message,
                            }
                            for f in document.findings
                        ]
                    items.append(arrival)
            return {"arrivals": items, "next_after": last}

    return await run_in_threadpool(look)


@router.get("/events", summary="The event feed: poll with ?after=<last id seen>")
async def list_events(
    ctx: Ctx,
    agency_id: Agency,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    def look() -> dict[str, Any]:
        with ctx.reads() as session:
            items, last = feed.events(session, ctx.country, agency_id, after=after, limit=limit)
            return {"events": items, "next_after": last}

    return await run_in_threadpool(look)
