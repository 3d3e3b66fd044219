"""The Python client for agency integrators: the agency API of a greenlane node, and webhooks.

    from greenlane.client import GreenlaneClient

    with GreenlaneClient("https://node.example", token) as client:
        certificate = client.submit(xml)              # retried safely: one Idempotency-Key
        print(client.status(certificate.id).tracking) # PendingDelivery, then Delivered

Every write carries an ``Idempotency-Key`` (a fresh uuid4 unless given) that
stays the same across the client's own retries, so a submit whose answer was
lost on the way is retried without issuing a second certificate. Only
connection errors, timeouts and 502/503/504 are retried, with exponential
backoff and jitter; any other error answer raises at once.

The exceptions:

    GreenlaneClientError
     ├── GreenlaneAPIError          the node answered with an error: code, message, status, findings
     ├── GreenlaneTransportError    no answer, even after the retries (connection, timeout)
     └── WebhookVerificationError   a webhook request that is not the node's, or too old

This module needs only httpx and the standard library: it imports nothing of
the node, so integrators may vendor it.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import httpx

__all__ = [
    "Arrival",
    "Certificate",
    "CertificatePage",
    "Event",
    "EventPage",
    "Finding",
    "GreenlaneAPIError",
    "GreenlaneClient",
    "GreenlaneClientError",
    "GreenlaneTransportError",
    "Message",
    "Subscription",
    "WebhookVerificationError",
    "verify_webhook",
    "webhook_signature",
]

ID_HEADER: Final = "Greenlane-Webhook-Id"
TIMESTAMP_HEADER: Final = "Greenlane-Webhook-Timestamp"
SIGNATURE_HEADER: Final = "Greenlane-Webhook-Signature"
SIGNATURE_VERSION: Final = "v1"
RETRY_STATUSES: Final = frozenset({502, 503, 504})
_RETRY_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_USER_AGENT: Final = "greenlane-client/1"


# --- errors ------------------------------------------------------------------------------


class GreenlaneClientError(Exception):
    """Anything the client raises on purpose."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding about a certificate: ``{level, area, path, code, message}``."""

    level: str
    area: str
    path: str
    code: str
    message: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            level=str(data.get("level", "")),
            area=str(data.get("area", "")),
            path=str(data.get("path", "")),
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
        )


class GreenlaneAPIError(GreenlaneClientError):
    """The node answered with an error.

    ``code`` is the node's stable error code (docs/codes.md), or ``http.<status>``
    when the answer did not come in the node's error shape (a proxy's 502, say).
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        findings: list[Finding] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.code = code
        self.message = message
        self.status = status
        self.findings = findings or []
        self.body = body
        """The whole parsed error body, for fields beyond these (``problems``, say)."""


class GreenlaneTransportError(GreenlaneClientError):
    """No answer from the node, after the retries: connection refused or lost, or a timeout."""


class WebhookVerificationError(GreenlaneClientError):
    """A webhook request that the node did not sign with this secret, or signed too long ago."""


# --- results -----------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Message:
    """One envelope of an issued certificate, on its way to the partner node."""

    message_id: str
    to: str
    mode: str
    status: str
    tracking: str
    attempts: int
    created_at: datetime | None
    delivered_at: datetime | None
    delivery_number: int | None
    last_error: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(
            message_id=data["message_id"],
            to=data["to"],
            mode=data["mode"],
            status=data["status"],
            tracking=data["tracking"],
            attempts=data["attempts"],
            created_at=_time(data.get("created_at")),
            delivered_at=_time(data.get("delivered_at")),
            delivery_number=data.get("delivery_number"),
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True, slots=True)
class Arrival:
    """One envelope that arrived from the partner node (``from_node`` is its ``from``)."""

    delivery_number: int
    message_id: str
    from_node: str
    document_type: str
    status: str
    number: str
    tracking: str
    quarantined: bool
    duplicate_number: bool
    certificate_id: int | None
    received_at: datetime | None
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Arrival:
        return cls(
            delivery_number=data["delivery_number"],
            message_id=data["message_id"],
            from_node=data["from"],
            document_type=data["document_type"],
            status=data["status"],
            number=data["number"],
            tracking=data["tracking"],
            quarantined=data["quarantined"],
            duplicate_number=data["duplicate_number"],
            certificate_id=data.get("certificate_id"),
            received_at=_time(data.get("received_at")),
            findings=[Finding.from_dict(f) for f in data.get("findings") or []],
        )


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate as the node tracks it.

    ``status`` is the UNCL 4405 code (``70`` issued, ``40`` withdrawn) or
    ``superseded``. For one this agency issued, ``messages`` are its envelopes
    and ``tracking`` the last one's state (``PendingDelivery``, ``Delivered``...);
    for one that arrived, ``arrivals`` are its deliveries. Lists carry neither.
    """

    id: int
    direction: str
    number: str
    document_type: str
    status: str
    issuer_country: str
    destination_country: str
    agency: str | None
    replaces: str | None
    replaced_by: str | None
    duplicate_number: bool
    created_at: datetime | None
    updated_at: datetime | None
    tracking: str | None = None
    messages: list[Message] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    superseded: Certificate | None = None
    """After a replace: the certificate replaced, now ``superseded``."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Certificate:
        superseded = data.get("superseded")
        return cls(
            id=data["id"],
            direction=data["direction"],
            number=data["number"],
            document_type=data["document_type"],
            status=data["status"],
            issuer_country=data["issuer_country"],
            destination_country=data["destination_country"],
            agency=data.get("agency"),
            replaces=data.get("replaces"),
            replaced_by=data.get("replaced_by"),
            duplicate_number=bool(data.get("duplicate_number")),
            created_at=_time(data.get("created_at")),
            updated_at=_time(data.get("updated_at")),
            tracking=data.get("tracking"),
            messages=[Message.from_dict(m) for m in data.get("messages") or []],
            arrivals=[Arrival.from_dict(a) for a in data.get("arrivals") or []],
            superseded=Certificate.from_dict(superseded) if superseded else None,
        )


@dataclass(frozen=True, slots=True)
class CertificatePage:
    certificates: list[Certificate]
    next_after: int
    """Pass as ``after`` for the next page."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the feed; ``data`` is the whole event as the node sent it.

    Kinds: ``certificate.received``, ``certificate.quarantined`` (no certificate
    yet: ``data`` has its number, status and ``inbox_id``), ``certificate.delivered``.
    """

    id: int
    kind: str
    certificate: Certificate | None
    data: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        certificate = data.get("certificate")
        return cls(
            id=data["id"],
            kind=data["kind"],
            certificate=Certificate.from_dict(certificate) if certificate else None,
            data=dict(data),
        )


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[Event]
    next_after: int
    """Pass as ``after`` next time: it moves on even past events this agency may not see."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A webhook; ``secret`` is there only in the answer to :meth:`GreenlaneClient.subscribe`."""

    id: int
    url: str
    cursor: int
    secret: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        return cls(
            id=data["id"],
            url=data["url"],
            cursor=data["cursor"],
            secret=data.get("secret"),
            attempts=data.get("attempts", 0),
            last_error=data.get("last_error"),
            next_attempt_at=_time(data.get("next_attempt_at")),
            created_at=_time(data.get("created_at")),
        )


# --- the client --------------------------------------------------------------------------


class GreenlaneClient:
    """A synchronous client of one node's agency API, authenticated by the agency's API token.

    ``retries`` is how many times a request is sent again after a connection
    error, a timeout or a 502/503/504 (so at most ``retries + 1`` attempts).
    ``transport`` is handed to httpx (for a proxy, mutual TLS, or tests).
    Proxy settings from the environment are not used.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.25,
        backoff_max: float = 5.0,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": _USER_AGENT},
            timeout=timeout,
            transport=transport,
            trust_env=False,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GreenlaneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # certificates

    def submit(
        self,
        xml: bytes | None = None,
        *,
        json_form: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Certificate:
        """Submit a certificate, as SPS XML or in the JSON form (exactly one of the two).

        The node signs it as the agency (unless it carries the agency's own
        valid signature) and queues it for the partner node. Submitting the same
        certificate again returns the one already issued.
        """
        if (xml is None) == (json_form is None):
            raise ValueError("give exactly one of xml and json_form")
        if xml is not None:
            content, media = xml, "application/xml"
        else:
            content, media = json.dumps(json_form).encode(), "application/json"
        response = self._request(
            "POST",
            "/certificates",
            content=content,
            headers={"Content-Type": media},
            idempotency_key=idempotency_key or _new_key(),
        )
        return Certificate.from_dict(response.json())

    def status(self, certificate_id: int) -> Certificate:
        """A certificate with its status and tracking (its envelopes, or its arrivals)."""
        return Certificate.from_dict(self._request("GET", f"/certificates/{certificate_id}").json())

    def get_document(self, certificate_id: int) -> bytes:
        """The certificate's current signed XML, byte for byte."""
        return self._request("GET", f"/certificates/{certificate_id}/document").content

    def list(
        self,
        direction: str | None = None,
        status: str | None = None,
        after: int = 0,
        limit: int = 100,
        *,
        number: str | None = None,
    ) -> CertificatePage:
        """One page of the certificates this agency issued (``issued``) or may see arrive
        (``received``), in id order after ``after``."""
        params: dict[str, str | int] = {"after": after, "limit": limit}
        if direction is not None:
            params["direction"] = direction
        if status is not None:
            params["status"] = status
        if number is not None:
            params["number"] = number
        data = self._request("GET", "/certificates", params=params).json()
        return CertificatePage(
            [Certificate.from_dict(c) for c in data["certificates"]], data["next_after"]
        )

    def iter_certificates(
        self,
        direction: str | None = None,
        status: str | None = None,
        after: int = 0,
        *,
        page_size: int = 100,
        number: str | None = None,
    ) -> Iterator[Certificate]:
        """Every certificate after ``after``, fetched page by page as the loop goes."""
        while True:
            page = self.list(direction, status, after, page_size, number=number)
            yield from page.certificates
            if not page.certificates or page.next_after <= after:
                return
            after = page.next_after

    def arrivals(
        self, after: int = 0, limit: int = 100, *, quarantined: bool | None = None
    ) -> builtins.list[Arrival]:
        """Envelopes that arrived for this country in the agency's field, quarantine included,
        by delivery number after ``after``."""
        params: dict[str, str | int] = {"after": after, "limit": limit}
        if quarantined is not None:
            params["quarantined"] = "true" if quarantined else "false"
        data = self._request("GET", "/arrivals", params=params).json()
        return [Arrival.from_dict(a) for a in data["arrivals"]]

    def withdraw(
        self, certificate_id: int, reason: str, idempotency_key: str | None = None
    ) -> Certificate:
        """Withdraw a certificate this agency issued (status 40); the partner node is told."""
        response = self._request(
            "POST",
            f"/certificates/{certificate_id}/withdraw",
            json={"reason": reason},
            idempotency_key=idempotency_key or _new_key(),
        )
        return Certificate.from_dict(response.json())

    def replace(
        self,
        certificate_id: int,
        reason: str,
        *,
        xml: bytes | None = None,
        json_form: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Certificate:
        """Replace a certificate with a new one (exactly one of ``xml`` and ``json_form``).

        The node adds the replacement notes (ADRP, ADRPN, ADRPR, ADRD); the
        answer is the new certificate, with the old one in ``superseded``.
        """
        if (xml is None) == (json_form is None):
            raise ValueError("give exactly one of xml and json_form")
        body: dict[str, Any] = {"reason": reason}
        if xml is not None:
            body["certificate_xml"] = xml.decode("utf-8")
        else:
            body["certificate"] = dict(json_form or {})
        response = self._request(
            "POST",
            f"/certificates/{certificate_id}/replace",
            json=body,
            idempotency_key=idempotency_key or _new_key(),
        )
        return Certificate.from_dict(response.json())

    # events and webhooks

    def events(self, after: int = 0, limit: int = 100) -> EventPage:
        """One page of the event feed after ``after`` (keep ``next_after`` for the next call)."""
        data = self._request("GET", "/events", params={"after": after, "limit": limit}).json()
        return EventPage([Event.from_dict(e) for e in data["events"]], data["next_after"])

    def iter_events(self, after: int = 0, *, page_size: int = 100) -> Iterator[Event]:
        """Every event after ``after`` there is now, page by page; ends at the newest."""
        while True:
            page = self.events(after, page_size)
            yield from page.events
            if page.next_after <= after:
                return
            after = page.next_after

    def subscribe(
        self, url: str, *, after: int | None = None, idempotency_key: str | None = None
    ) -> Subscription:
        """Have the node POST each new event to ``url``; keep the answer's ``secret``, shown once.

        ``after`` starts the webhook after that event id (0: the whole feed);
        by default it starts with the events that come next.
        """
        body: dict[str, Any] = {"url": url}
        if after is not None:
            body["after"] = after
        response = self._request(
            "POST", "/subscriptions", json=body, idempotency_key=idempotency_key or _new_key()
        )
        return Subscription.from_dict(response.json())

    def subscriptions(self) -> builtins.list[Subscription]:
        """This agency's webhooks, with their cursor and last error (no secrets)."""
        data = self._request("GET", "/subscriptions").json()
        return [Subscription.from_dict(s) for s in data["subscriptions"]]

    def unsubscribe(self, subscription_id: int) -> None:
        """Stop a webhook; unsubscribing again is harmless."""
        self._request("DELETE", f"/subscriptions/{subscription_id}")

    # the one place requests are sent

    def _request(
        self,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except _RETRY_ERRORS as exc:
                if last:
                    raise GreenlaneTransportError(
                        f"{method} {path}: no answer after {attempt + 1} attempts: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            except httpx.HTTPError as exc:
                raise GreenlaneTransportError(f"{method} {path}: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES or last:
                    raise _api_error(response)
            time.sleep(self._delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: half the step fixed, half random."""
        step = min(self.backoff_max, self.backoff * 2.0**attempt)
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - jitter, not a secret


def _new_key() -> str:
    return str(uuid.uuid4())


def _api_error(response: httpx.Response) -> GreenlaneAPIError:
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text[:200].strip()
        return GreenlaneAPIError(
            f"http.{response.status_code}", text or response.reason_phrase, response.status_code
        )
    findings = [Finding.from_dict(f) for f in error.get("findings") or []]
    return GreenlaneAPIError(code, message, response.status_code, findings, body)


# --- webhooks ----------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``v1`` signature: hex HMAC-SHA256 with the secret over ``{timestamp}.{body}``."""
    signed = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """The event a webhook request carries, once it is shown to be the node's and fresh.

    Checks, in constant time, that ``Greenlane-Webhook-Signature`` holds a
    ``v1=`` HMAC of ``{timestamp}.{body}`` under ``secret``; that the timestamp
    is within ``tolerance`` seconds of ``now`` (default: the clock), so an old
    request cannot be replayed later; and that the body is the event the
    ``Greenlane-Webhook-Id`` header names. Pass the body exactly as received.
    Raises WebhookVerificationError otherwise.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    folded = {name.lower(): value for name, value in headers.items()}
    timestamp = folded.get(TIMESTAMP_HEADER.lower(), "").strip()
    signatures = folded.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp or not signatures:
        raise WebhookVerificationError(
            f"no {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header: not a greenlane webhook"
        )
    if not timestamp.isdigit():
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not unix seconds")
    expected = webhook_signature(secret, timestamp, raw)
    offered = [
        value
        for part in signatures.replace(",", " ").split()
        for version, _, value in [part.partition("=")]
        if version == SIGNATURE_VERSION
    ]
    # Compare against every offered signature (no early exit), each in constant time.
    matches = [
        hmac.compare_digest(expected.encode(), v.encode("ascii", "replace")) for v in offered
    ]
    if not any(matches):
        raise WebhookVerificationError("the signature does not match this body and secret")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise WebhookVerificationError(
            f"the webhook was signed {age:.0f} s from now, outside the {tolerance} s window"
        )
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError(f"the body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    event_id = folded.get(ID_HEADER.lower())
    if event_id is not None and event_id.strip() != str(event.get("id")):
        raise WebhookVerificationError(f"{ID_HEADER} does not name the event in the body")
    return event
