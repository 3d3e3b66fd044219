"""The agency API on a running AZ node: idempotent submits, listing, and every refusal's shape.

One corridor serves the whole module (each test uses certificate numbers of
its own); refusals are checked for their HTTP status, the one error shape and
that nothing was stored, by counting rows in the AZ node's database.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select

from greenlane.api.agency import MAX_CERTIFICATE_BYTES
from greenlane.cli import demo_certificates
from greenlane.exchange import agencies
from greenlane.sps.identity import RAM
from greenlane.store.models import Certificate, IdempotencyKey, OutboxMessage, StoredDocument
from tests.exchange import harness
from tests.exchange.conftest import Pair, running_pair

XML = {"content-type": "application/xml"}
WAIT = 10.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(tmp_path_factory.mktemp("agency-api") / "corridor") as running:
        yield running


def stored_rows(pair: Pair) -> dict[str, int]:
    """How many certificates, documents, outbox messages and idempotency keys AZ holds."""
    with pair.az.ctx.sessions() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Certificate, StoredDocument, OutboxMessage, IdempotencyKey)
        }


def outbox_messages(pair: Pair, certificate_id: int) -> int:
    with pair.az.ctx.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.certificate_id == certificate_id)
        )
    return count or 0


def certificates_numbered(pair: Pair, number: str) -> int:
    with pair.az.ctx.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Certificate).where(Certificate.number == number)
        )
    return count or 0


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape with this status and code; its error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def form(lot: int, number: str) -> dict[str, Any]:
    """A certificate in the JSON form, with its own number."""
    data = copy.deepcopy(demo_certificates.certificate(demo_certificates.LOTS[lot]))
    data["SPSCertificate"]["SPSExchangedDocument"]["ID"] = number
    return data


def without(xml: bytes, local_name: str) -> bytes:
    """The certificate with every element of this (RAM) name removed."""
    root = etree.fromstring(xml)
    for element in list(root.iter(f"{{{RAM}}}{local_name}")):
        parent = element.getparent()
        assert parent is not None
        parent.remove(element)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# Idempotency


def test_same_idempotency_key_and_body_returns_the_first_answer(pair: Pair) -> None:
    """A retried submit with its key makes one certificate and replays the first answer."""
    fsa = pair.agency("az-fsa")
    body = harness.certificate_xml("AZ-API-0001")
    headers = {**XML, "Idempotency-Key": "retry-0001"}
    first = fsa.post("/api/v1/certificates", content=body, headers=headers)
    second = fsa.post("/api/v1/certificates", content=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert certificates_numbered(pair, "AZ-API-0001") == 1
    assert outbox_messages(pair, first.json()["id"]) == 1


def test_same_key_with_another_body_is_refused(pair: Pair) -> None:
    """A key already used for another request is 422 idempotency.key-reused; nothing stored."""
    fsa = pair.agency("az-fsa")
    headers = {**XML, "Idempotency-Key": "retry-0002"}
    first = fsa.post(
        "/api/v1/certificates", content=harness.certificate_xml("AZ-API-0002"), headers=headers
    )
    assert first.status_code == 201, first.text
    before = stored_rows(pair)
    reused = fsa.post(
        "/api/v1/certificates", content=harness.certificate_xml("AZ-API-0003"), headers=headers
    )
    assert_error(reused, 422, "idempotency.key-reused")
    assert stored_rows(pair) == before
    assert certificates_numbered(pair, "AZ-API-0003") == 0


def test_the_same_certificate_again_without_a_key_is_200_and_sends_nothing(pair: Pair) -> None:
    """Submitting the same bytes (XML or JSON form) twice answers 200 and queues one message."""
    fsa = pair.agency("az-fsa")
    body = harness.certificate_xml("AZ-API-0010")
    first = fsa.post("/api/v1/certificates", content=body, headers=XML)
    again = fsa.post("/api/v1/certificates", content=body, headers=XML)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert outbox_messages(pair, first.json()["id"]) == 1

    by_form = fsa.post("/api/v1/certificates", json=form(1, "AZ-API-0011"))
    by_form_again = fsa.post("/api/v1/certificates", json=form(1, "AZ-API-0011"))
    assert (by_form.status_code, by_form_again.status_code) == (201, 200)
    assert outbox_messages(pair, by_form.json()["id"]) == 1

    signed = fsa.get(f"/api/v1/certificates/{first.json()['id']}/document").content
    as_signed = fsa.post("/api/v1/certificates", content=signed, headers=XML)
    assert as_signed.status_code == 200, as_signed.text
    assert outbox_messages(pair, first.json()["id"]) == 1


def test_the_same_number_with_other_content_is_refused(pair: Pair) -> None:
    """A number already issued cannot be issued again with other content: 409."""
    fsa = pair.agency("az-fsa")
    first = fsa.post(
        "/api/v1/certificates", content=harness.certificate_xml("AZ-API-0020"), headers=XML
    )
    assert first.status_code == 201, first.text
    before = stored_rows(pair)
    other = fsa.post(
        "/api/v1/certificates",
        content=harness.certificate_xml("AZ-API-0020", lot=3),
        headers=XML,
    )
    assert_error(other, 409, "certificate.number-taken")
    assert stored_rows(pair) == before


def test_a_retried_withdrawal_with_its_key_sends_once(pair: Pair) -> None:
    """A withdrawal retried with its key is replayed, not refused as final, and sends once."""
    fsa = pair.agency("az-fsa")
    created = fsa.post("/api/v1/certificates", json=form(2, "AZ-API-0030"))
    assert created.status_code == 201, created.text
    path = f"/api/v1/certificates/{created.json()['id']}/withdraw"
    headers = {"Idempotency-Key": "withdraw-0030"}
    first = fsa.post(path, json={"reason": "recalled"}, headers=headers)
    second = fsa.post(path, json={"reason": "recalled"}, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert first.json()["status"] == "40"
    assert outbox_messages(pair, created.json()["id"]) == 2


# Reading


def test_certificate_shows_status_tracking_and_messages(pair: Pair) -> None:
    """GET one certificate gives its status, tracking and each message with a delivery number."""
    fsa = pair.agency("az-fsa")
    created = fsa.post("/api/v1/certificates", json=form(3, "AZ-API-0040")).json()

    def delivered() -> dict[str, Any] | None:
        body: dict[str, Any] = fsa.get(f"/api/v1/certificates/{created['id']}").json()
        return body if body["tracking"] == "Delivered" else None

    body = harness.wait_for(delivered, WAIT)
    assert body["status"] == "70"
    assert body["agency"] == "az-fsa"
    (message,) = body["messages"]
    assert message["to"] == "ru-node"
    assert message["mode"] == "push"
    assert message["attempts"] >= 1
    assert isinstance(message["delivery_number"], int)
    assert message["delivered_at"] is not None

    listed = fsa.get(
        "/api/v1/certificates", params={"number": "AZ-API-0040", "direction": "issued"}
    ).json()
    assert [c["id"] for c in listed["certificates"]] == [created["id"]]
    assert (
        fsa.get("/api/v1/certificates", params={"status": "40", "number": "AZ-API-0040"}).json()[
            "certificates"
        ]
        == []
    )


def test_listing_pages_past_certificates_the_agency_may_not_see(pair: Pair) -> None:
    """Customs at AZ pages past the NPPO's issued certificates to reach what arrived from RU."""
    fsa, customs, rsn = pair.agency("az-fsa"), pair.agency("az-customs"), pair.agency("ru-rsn")
    for index in range(5):
        made = fsa.post("/api/v1/certificates", json=form(index, f"AZ-API-05{index:02d}"))
        assert made.status_code == 201, made.text
    from_ru = form(0, "RU-API-0001")
    consignment = from_ru["SPSCertificate"]["SPSConsignment"]
    consignment["ExportSPSCountry"] = {"ID": "RU", "Name": ["Russian Federation"]}
    consignment["ImportSPSCountry"] = {"ID": "AZ", "Name": ["Azerbaijan"]}
    sent = rsn.post("/api/v1/certificates", json=from_ru)
    assert sent.status_code == 201, sent.text
    harness.wait_for(
        lambda: fsa.get("/api/v1/certificates", params={"number": "RU-API-0001"}).json()[
            "certificates"
        ],
        WAIT,
    )

    seen: list[str] = []
    cursor = 0
    for _ in range(100):
        page = customs.get("/api/v1/certificates", params={"after": cursor, "limit": 1}).json()
        seen.extend(c["number"] for c in page["certificates"])
        assert all(c["direction"] == "received" for c in page["certificates"])
        if page["next_after"] == cursor:
            break
        cursor = page["next_after"]
    assert seen == ["RU-API-0001"]

    arrivals = customs.get("/api/v1/arrivals").json()
    assert [a["number"] for a in arrivals["arrivals"]] == ["RU-API-0001"]
    assert arrivals["next_after"] == arrivals["arrivals"][-1]["delivery_number"]


def test_a_revoked_token_is_refused(pair: Pair) -> None:
    """A token works until it is revoked, then the same request is 401 auth.invalid."""
    ctx = pair.az.ctx
    with ctx.sessions() as session, session.begin():
        token = agencies.create_token(session, "az-fsa", ctx.clock(), label="revoked in a test")
        token_id = max(row.id for row in agencies.tokens(session))
    with pair.az.client(token) as client:
        assert client.get("/api/v1/certificates", params={"limit": 1}).status_code == 200
        with ctx.sessions() as session, session.begin():
            agencies.revoke_token(session, token_id, ctx.clock())
        assert_error(client.get("/api/v1/certificates"), 401, "auth.invalid")


# Refusals


@dataclass(frozen=True)
class Refusal:
    name: str
    send: Callable[[Pair], httpx.Response]
    status: int
    code: str
    findings: bool = False


def _post(
    agency: str, path: str = "/api/v1/certificates", **kwargs: Any
) -> Callable[[Pair], httpx.Response]:
    return lambda pair: pair.agency(agency).post(path, **kwargs)


def _no_token(pair: Pair) -> httpx.Response:
    with httpx.Client(base_url=pair.az.url, trust_env=False) as client:
        return client.post(
            "/api/v1/certificates", content=harness.certificate_xml("AZ-API-X001"), headers=XML
        )


def _basic_auth(pair: Pair) -> httpx.Response:
    token = pair.made.tokens("az-node")["az-fsa"]
    with httpx.Client(base_url=pair.az.url, trust_env=False) as client:
        return client.get("/api/v1/certificates", headers={"Authorization": f"Basic {token}"})


def _bad_token(pair: Pair) -> httpx.Response:
    with pair.az.client("glt_not-a-token") as client:
        return client.post(
            "/api/v1/certificates", content=harness.certificate_xml("AZ-API-X002"), headers=XML
        )


def _other_nodes_token(pair: Pair) -> httpx.Response:
    with pair.az.client(pair.made.tokens("ru-node")["ru-rsn"]) as client:
        return client.get("/api/v1/certificates")


def _consignment(number: str, **countries: str) -> dict[str, Any]:
    data = form(0, number)
    for field, code in countries.items():
        data["SPSCertificate"]["SPSConsignment"][field] = {"ID": code, "Name": [code]}
    return data


def _status(number: str, status: str) -> dict[str, Any]:
    data = form(0, number)
    data["SPSCertificate"]["SPSExchangedDocument"]["StatusCode"] = status
    return data


def _oversize_streamed(pair: Pair) -> httpx.Response:
    chunk = b"x" * 65536

    def body() -> Iterator[bytes]:
        for _ in range(MAX_CERTIFICATE_BYTES // len(chunk) + 2):
            yield chunk

    return pair.agency("az-fsa").post("/api/v1/certificates", content=body(), headers=XML)


REFUSALS = [
    Refusal("no token", _no_token, 401, "auth.missing"),
    Refusal("basic, not bearer", _basic_auth, 401, "auth.missing"),
    Refusal("unknown token", _bad_token, 401, "auth.invalid"),
    Refusal("the other node's agency token", _other_nodes_token, 401, "auth.invalid"),
    Refusal(
        "missing required element (XML)",
        _post(
            "az-fsa",
            content=without(harness.certificate_xml("AZ-API-X003"), "IssueDateTime"),
            headers=XML,
        ),
        422,
        "certificate.invalid",
        findings=True,
    ),
    Refusal(
        "missing required element (JSON form)",
        _post(
            "az-fsa",
            json={
                "SPSCertificate": {
                    "SPSExchangedDocument": form(0, "X")["SPSCertificate"]["SPSExchangedDocument"]
                }
            },
        ),
        422,
        "sps.not-canonical",
        findings=True,
    ),
    Refusal(
        "not XML at all",
        _post("az-fsa", content=b"<rsm:SPSCertificate", headers=XML),
        422,
        "certificate.unreadable",
        findings=True,
    ),
    Refusal(
        "import country not a partner",
        _post("az-fsa", json=_consignment("AZ-API-X004", ImportSPSCountry="GE")),
        422,
        "certificate.no-route",
    ),
    Refusal(
        "import country is our own",
        _post("az-fsa", json=_consignment("AZ-API-X005", ImportSPSCountry="AZ")),
        422,
        "certificate.no-route",
    ),
    Refusal(
        "export country not AZ",
        _post("az-fsa", json=_consignment("AZ-API-X006", ExportSPSCountry="TR")),
        422,
        "certificate.wrong-country",
    ),
    Refusal(
        "a new certificate with status 40",
        _post("az-fsa", json=_status("AZ-API-X007", "40")),
        422,
        "certificate.status",
    ),
    Refusal(
        "customs issuing a phytosanitary certificate",
        _post("az-customs", json=form(0, "AZ-API-X008")),
        403,
        "auth.forbidden",
    ),
    Refusal(
        "customs issuing a veterinary certificate",
        _post("az-customs", json=form(5, "AZ-API-X009")),
        403,
        "auth.forbidden",
    ),
    Refusal(
        "text/plain body",
        _post("az-fsa", content=b"AZ-API-X010", headers={"content-type": "text/plain"}),
        415,
        "request.unsupported-media-type",
    ),
    Refusal(
        "no content type",
        _post("az-fsa", content=harness.certificate_xml("AZ-API-X011")),
        415,
        "request.unsupported-media-type",
    ),
    Refusal(
        "JSON that does not parse",
        _post(
            "az-fsa", content=b'{"SPSCertificate": ', headers={"content-type": "application/json"}
        ),
        400,
        "request.invalid",
    ),
    Refusal(
        "JSON that is not the certificate form",
        _post("az-fsa", json=["SPSCertificate"]),
        422,
        "json.type",
        findings=True,
    ),
    Refusal(
        "body over the limit (declared)",
        _post("az-fsa", content=b"x" * (MAX_CERTIFICATE_BYTES + 1), headers=XML),
        413,
        "request.too-large",
    ),
    Refusal("body over the limit (streamed)", _oversize_streamed, 413, "request.too-large"),
    Refusal(
        "Idempotency-Key too long",
        _post(
            "az-fsa",
            content=harness.certificate_xml("AZ-API-X012"),
            headers={**XML, "Idempotency-Key": "k" * 201},
        ),
        400,
        "request.invalid",
    ),
    Refusal(
        "withdraw without a reason",
        _post("az-fsa", "/api/v1/certificates/1/withdraw", json={}),
        400,
        "request.invalid",
    ),
    Refusal(
        "withdraw an unknown certificate",
        _post("az-fsa", "/api/v1/certificates/999999/withdraw", json={"reason": "x"}),
        404,
        "certificate.not-found",
    ),
    Refusal(
        "replace with neither XML nor form",
        _post("az-fsa", "/api/v1/certificates/1/replace", json={"reason": "x"}),
        400,
        "request.invalid",
    ),
    Refusal(
        "unknown path",
        lambda pair: pair.agency("az-fsa").get("/api/v1/certificate"),
        404,
        "request.not-found",
    ),
    Refusal(
        "unknown certificate",
        lambda pair: pair.agency("az-fsa").get("/api/v1/certificates/999999"),
        404,
        "certificate.not-found",
    ),
    Refusal(
        "id that is not a number",
        lambda pair: pair.agency("az-fsa").get("/api/v1/certificates/AZ-2026-000123"),
        400,
        "request.invalid",
    ),
    Refusal(
        "wrong method",
        lambda pair: pair.agency("az-fsa").delete("/api/v1/certificates"),
        405,
        "request.method-not-allowed",
    ),
    Refusal(
        "bad list parameter",
        lambda pair: pair.agency("az-fsa").get(
            "/api/v1/certificates", params={"direction": "sideways"}
        ),
        400,
        "request.invalid",
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_refusals_have_one_shape_and_store_nothing(pair: Pair, refusal: Refusal) -> None:
    """Each refused request gets its status and code in the one error shape; no row is added."""
    before = stored_rows(pair)
    error = assert_error(refusal.send(pair), refusal.status, refusal.code)
    if refusal.findings:
        assert error["findings"], error
        for item in error["findings"]:
            assert {"level", "area", "path", "code", "message"} <= set(item)
    assert stored_rows(pair) == before
