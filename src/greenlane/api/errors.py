"""One JSON error shape for every error the HTTP API returns, from any layer.

    {"error": {"code": "envelope.malformed", "message": "...", "findings": [...]}}

``code`` is one of the stable codes in :mod:`greenlane.codes`; ``findings`` is
there when a document's checks are the reason. The HTTP status follows the
code (its prefix, or the code itself where one prefix spans several statuses).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from greenlane.errors import GreenlaneError

log = logging.getLogger("greenlane.api")

_BY_CODE: dict[str, int] = {
    "auth.missing": 401,
    "auth.invalid": 401,
    "auth.forbidden": 403,
    "envelope.too-large": 413,
    "request.too-large": 413,
    "certificate.not-found": 404,
    "delivery.not-found": 404,
    "request.not-found": 404,
    "subscription.not-found": 404,
    "certificate.number-taken": 409,
    "certificate.final": 409,
    "delivery.not-pending": 409,
    "idempotency.key-reused": 422,
    "request.method-not-allowed": 405,
    "request.unsupported-media-type": 415,
    "tls.wrong-peer": 403,
    "tls.no-client-cert": 403,
    "node.not-a-partner": 403,
    "db.unavailable": 503,
    "internal": 500,
}
_BY_PREFIX: dict[str, int] = {
    "envelope": 400,
    "message": 401,
    "trust": 401,
    "receipt": 400,
    "certificate": 422,
    "request": 400,
    "sps": 422,
    "json": 422,
    "xml": 422,
}


def status_for(code: str) -> int:
    if code in _BY_CODE:
        return _BY_CODE[code]
    return _BY_PREFIX.get(code.split(".", 1)[0], 400)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status_for(code))


def install(app: FastAPI) -> None:
    """Route every exception the app can meet to the one shape."""

    @app.exception_handler(GreenlaneError)
    async def _greenlane(_: Request, exc: GreenlaneError) -> JSONResponse:
        findings = getattr(exc, "findings", None)
        extra: dict[str, Any] = {}
        if findings:
            extra["findings"] = [f.to_dict() for f in findings]
        finding = getattr(exc, "finding", None)
        if finding is not None:
            extra["findings"] = [finding.to_dict()]
        return error_response(exc.code, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error_response("request.invalid", "the request is not valid", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "request.not-found",
            405: "request.method-not-allowed",
            413: "request.too-large",
            415: "request.unsupported-media-type",
        }.get(exc.status_code, "request.invalid")
        response = error_response(code, str(exc.detail))
        response.status_code = exc.status_code
        return response

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in a request")
        return error_response("internal", "the node failed in a way it did not foresee")
