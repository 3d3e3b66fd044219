"""Webhook subscriptions of the agency API: subscribe a URL, list, unsubscribe.

Authenticated with the agency's token like the rest of the agency API. The
secret that signs the webhooks is in the answer to the subscribe, and only
there (a retry with the same ``Idempotency-Key`` gets the same answer back).
What is posted, and how to verify it: :mod:`greenlane.exchange.webhooks`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from greenlane.api.agency import Agency, IdempotencyKeyHeader, idempotent, request_digest
from greenlane.api.node import Ctx
from greenlane.exchange import webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


class NewSubscription(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=webhooks.URL_MAX,
        description="An http:// or https:// URL the node POSTs each event to",
    )
    after: int | None = Field(
        default=None,
        ge=0,
        description="Start after this event id (0: the whole feed); by default with the next event",
    )


@router.post(
    "/subscriptions",
    status_code=201,
    summary="Subscribe a URL to the event feed (a webhook); the secret is shown once",
)
async def subscribe(
    subscription: NewSubscription,
    ctx: Ctx,
    agency_id: Agency,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    url = webhooks.check_url(subscription.url)

    def run(session: Session) -> tuple[int, dict[str, Any]]:
        row = webhooks.subscribe(session, ctx, agency_id, url, subscription.after)
        return 201, {**webhooks.view(row), "secret": row.secret}

    digest = request_digest("subscribe", url, str(subscription.after))
    return await run_in_threadpool(idempotent, ctx, agency_id, key, digest, run)


@router.get("/subscriptions", summary="This agency's webhooks (without their secrets)")
async def list_subscriptions(ctx: Ctx, agency_id: Agency) -> dict[str, Any]:
    def look() -> dict[str, Any]:
        with ctx.reads() as session:
            return {
                "subscriptions": [webhooks.view(r) for r in webhooks.active(session, agency_id)]
            }

    return await run_in_threadpool(look)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="Stop a webhook (stopping it again is harmless)",
)
async def unsubscribe(subscription_id: int, ctx: Ctx, agency_id: Agency) -> Response:
    def stop() -> None:
        with ctx.sessions() as session, session.begin():
            webhooks.unsubscribe(session, agency_id, subscription_id, ctx.clock())

    await run_in_threadpool(stop)
    return Response(status_code=204)
