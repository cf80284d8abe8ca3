"""The SumUp sandbox, driven through a Quart test client.

Every JSON answer an API call gets here is checked against SumUp's own OpenAPI document:
its status code must be documented for that operation, its media type must be the
documented one and its body must validate against the documented schema. So the cart's
SumUp adapter, tested against the sandbox, is tested against what SumUp really sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jsonschema
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as QuartClient
from referencing import Registry
from referencing.jsonschema import DRAFT4

from rose_cart.standalone.sumup_sandbox import SandboxState, post_webhook, sandbox_blueprint

PREFIX = "/sandbox/sumup"
KEY = "sup_sk_sandbox"
MERCHANT = "MSANDBOX"
OTHER_KEY = "sup_sk_other"
OTHER_MERCHANT = "MOTHER"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# SumUp's own document: the shared copy beside the repository when it is there (it is the
# newest), else the copy kept with these tests (SumUp's, Apache 2.0) so a clone anywhere works.
_SHARED_SPEC = Path(__file__).resolve().parents[3] / "shared" / "sumup" / "openapi.json"
_KEPT_SPEC = Path(__file__).resolve().parent / "sumup-openapi.json"
SPEC_PATH = Path(
    os.environ.get("SUMUP_OPENAPI", _SHARED_SPEC if _SHARED_SPEC.exists() else _KEPT_SPEC)
)
SPEC_URI = "urn:sumup:openapi"

# SumUp's API gateway answers 401 for any operation before the operation itself runs.
# The refunds operation does not list that answer, so it is checked against the Problem
# schema that the other operations document for their 401.
GATEWAY_401 = {
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}},
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
    }
}


# --------------------------------------------------------------------------- the spec


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schemas -> JSON Schema: ``nullable: true`` becomes a null type."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _to_json_schema(value) for key, value in node.items()}
    if converted.get("nullable") is True:
        del converted["nullable"]
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def _pointer(*parts: str) -> str:
    return "/".join(quote(part.replace("~", "~0").replace("/", "~1"), safe="~") for part in parts)


class OpenApi:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = _to_json_schema(document)
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, DRAFT4.create_resource(self.document)
        )
        self.templates = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in self.document["paths"]
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        matches = [template for regex, template in self.templates if regex.match(path)]
        assert matches, f"{path} is not a SumUp path"
        # The most literal template wins, as in any router.
        template = min(matches, key=lambda t: t.count("{"))
        operations = self.document["paths"][template]
        assert method.lower() in operations, f"SumUp has no {method} {template}"
        return template, operations[method.lower()]

    def check(self, method: str, path: str, status: int, media_type: str, body: Any) -> str:
        """Assert the answer is one SumUp documents; returns the operationId."""
        template, operation = self.operation(method, path)
        responses = operation["responses"]
        pointer: tuple[str, ...]
        if str(status) in responses:
            pointer = ("paths", template, method.lower(), "responses", str(status))
            response = responses[str(status)]
        elif status == 401:
            pointer = ()
            response = GATEWAY_401
        else:
            raise AssertionError(
                f"{method} {template} answered {status}; SumUp documents {sorted(responses)}"
            )
        content = response.get("content", {})
        assert media_type in content, f"{status} as {media_type}; documented: {list(content)}"
        if pointer:
            ref = f"{SPEC_URI}#/{_pointer(*pointer, 'content', media_type, 'schema')}"
        else:
            ref = f"{SPEC_URI}#/components/schemas/Problem"
        validator = jsonschema.Draft4Validator(
            {"$ref": ref}, registry=self.registry, format_checker=FORMATS
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors
        )
        return str(operation["operationId"])


@pytest.fixture(scope="module")
def spec() -> OpenApi:
    if not SPEC_PATH.exists():
        pytest.fail(f"SumUp's OpenAPI document is missing at {SPEC_PATH} (set SUMUP_OPENAPI)")
    return OpenApi(json.loads(SPEC_PATH.read_text()))


# --------------------------------------------------------------------------- fixtures


@dataclass
class Clock:
    moment: datetime = START

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Webhooks:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def __call__(self, url: str, payload: dict[str, Any]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)  # long enough for a concurrent copy to start too
        self.calls.append((url, payload))
        self.in_flight -= 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def webhooks() -> Webhooks:
    return Webhooks()


@pytest.fixture
def state(clock: Clock, webhooks: Webhooks) -> SandboxState:
    return SandboxState(
        accounts={KEY: MERCHANT, OTHER_KEY: OTHER_MERCHANT},
        deliver_webhook=webhooks,
        now=clock,
    )


@pytest.fixture
def client(state: SandboxState) -> QuartClient:
    app = Quart(__name__)
    app.register_blueprint(sandbox_blueprint(state), url_prefix=PREFIX)
    return app.test_client()


class Api:
    """Calls the sandbox's API and checks every answer against SumUp's OpenAPI document."""

    def __init__(self, client: QuartClient, spec: OpenApi) -> None:
        self.client = client
        self.spec = spec
        self.seen: set[tuple[str, int]] = set()

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = KEY,
        body: Any = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        kwargs: dict[str, Any] = {"method": method, "headers": headers, "query_string": query}
        if body is not None:
            kwargs["json"] = body
        response = await self.client.open(PREFIX + path, **kwargs)
        data = json.loads(await response.get_data(as_text=True))
        media_type = response.mimetype or ""
        operation = self.spec.check(method, path, response.status_code, media_type, data)
        self.seen.add((operation, response.status_code))
        return response.status_code, data

    async def create(self, *, key: str | None = KEY, **fields: Any) -> tuple[int, Any]:
        body = {
            "checkout_reference": "order-1-attempt-1",
            "amount": 10.1,
            "currency": "GBP",
            "merchant_code": MERCHANT,
            "description": "Order 1 at the Rose Ash co-op",
            "return_url": "https://cart.example/webhooks/sumup/1",
            "redirect_url": "https://cart.example/orders/1",
            "hosted_checkout": {"enabled": True},
        }
        body.update(fields)
        return await self.call("POST", "/v0.1/checkouts", key=key, body=body)

    async def created(self, **fields: Any) -> dict[str, Any]:
        status, body = await self.create(**fields)
        assert status == 201, body
        return dict(body)

    async def get(self, checkout_id: str, key: str = KEY) -> tuple[int, Any]:
        return await self.call("GET", f"/v0.1/checkouts/{checkout_id}", key=key)

    async def refund(
        self,
        transaction_id: str,
        amount: float | None = None,
        *,
        merchant: str = MERCHANT,
        key: str = KEY,
    ) -> tuple[int, Any]:
        path = f"/v1.0/merchants/{merchant}/payments/{transaction_id}/refunds"
        return await self.call(
            "POST", path, key=key, body={} if amount is None else {"amount": amount}
        )


@pytest.fixture
def api(client: QuartClient, spec: OpenApi) -> Api:
    return Api(client, spec)


async def pay(client: QuartClient, checkout_id: str, outcome: str = "paid") -> Any:
    return await client.post(f"{PREFIX}/pay/{checkout_id}", form={"outcome": outcome})


async def page_text(client: QuartClient, checkout_id: str) -> tuple[int, str]:
    response = await client.get(f"{PREFIX}/pay/{checkout_id}")
    return response.status_code, await response.get_data(as_text=True)


# --------------------------------------------------------------------------- create


async def test_create_answers_201_with_a_pending_hosted_checkout(api: Api) -> None:
    checkout = await api.created()

    assert checkout["status"] == "PENDING"
    assert checkout["checkout_reference"] == "order-1-attempt-1"
    assert checkout["amount"] == 10.1
    assert checkout["currency"] == "GBP"
    assert checkout["merchant_code"] == MERCHANT
    assert checkout["description"] == "Order 1 at the Rose Ash co-op"
    assert checkout["return_url"] == "https://cart.example/webhooks/sumup/1"
    assert checkout["date"] == "2025-03-01T12:00:00+00:00"
    assert checkout["transactions"] == []
    assert checkout["hosted_checkout_url"] == f"http://localhost{PREFIX}/pay/{checkout['id']}"


async def test_hosted_url_follows_the_host_the_api_was_called_on(
    client: QuartClient, api: Api
) -> None:
    response = await client.post(
        f"{PREFIX}/v0.1/checkouts",
        headers={"Authorization": f"Bearer {KEY}", "Host": "shop.example:8002"},
        json={
            "checkout_reference": "r",
            "amount": 5,
            "currency": "EUR",
            "merchant_code": MERCHANT,
            "hosted_checkout": {"enabled": True},
        },
    )
    body = await response.get_json()
    assert body["hosted_checkout_url"] == f"http://shop.example:8002{PREFIX}/pay/{body['id']}"


async def test_create_without_hosted_checkout_gives_no_hosted_url(api: Api) -> None:
    checkout = await api.created(hosted_checkout={"enabled": False})

    assert "hosted_checkout_url" not in checkout


@pytest.mark.parametrize("missing", ["checkout_reference", "amount", "currency", "merchant_code"])
async def test_create_without_a_required_field_answers_400_missing(api: Api, missing: str) -> None:
    status, body = await api.create(**{missing: None})

    assert status == 400
    assert body == {"message": "Validation error", "error_code": "MISSING", "param": missing}


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("amount", -1),
        ("amount", 0),
        ("amount", "10.10"),
        ("amount", 10.123),
        ("currency", "XYZ"),
        ("currency", ["GBP"]),
        ("checkout_reference", "x" * 65),
        ("return_url", "not a url"),
        ("hosted_checkout", {"enabled": "yes"}),
        ("valid_until", "next tuesday"),
        ("valid_until", "2025-03-01T12:10:00"),
        ("valid_until", "2025-03-01"),
        ("valid_until", 1740831000),
    ],
)
async def test_create_with_an_invalid_field_answers_400_naming_it(
    api: Api, field_name: str, value: object
) -> None:
    invalid: dict[str, Any] = {field_name: value}

    status, body = await api.create(**invalid)

    assert status == 400
    assert body["error_code"] == "INVALID"
    assert body["param"] == field_name


async def test_create_with_a_body_that_is_not_json_answers_400(client: QuartClient) -> None:
    response = await client.post(
        f"{PREFIX}/v0.1/checkouts", headers={"Authorization": f"Bearer {KEY}"}, data="{nope"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("key", [None, "sup_sk_wrong", ""])
async def test_api_without_a_known_key_answers_401_problem(
    api: Api, state: SandboxState, key: str | None
) -> None:
    status, body = await api.create(key=key)

    assert status == 401
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert state.checkouts == {}


async def test_key_must_be_sent_as_a_bearer_token(client: QuartClient) -> None:
    response = await client.get(
        f"{PREFIX}/v0.1/checkouts", headers={"Authorization": f"Basic {KEY}"}
    )
    assert response.status_code == 401


async def test_create_for_a_merchant_the_key_does_not_own_answers_403(
    api: Api, state: SandboxState
) -> None:
    status, body = await api.create(merchant_code=OTHER_MERCHANT)

    assert status == 403
    assert body["error_code"] == "FORBIDDEN"
    assert state.checkouts == {}


async def test_a_reused_reference_answers_409_duplicated_checkout(
    api: Api, state: SandboxState
) -> None:
    first = await api.created()

    status, body = await api.create(amount=20)

    assert status == 409
    assert body["error_code"] == "DUPLICATED_CHECKOUT"
    assert list(state.checkouts) == [first["id"]]


async def test_references_are_unique_per_merchant_only(api: Api) -> None:
    await api.created()

    status, _ = await api.create(key=OTHER_KEY, merchant_code=OTHER_MERCHANT)

    assert status == 201


# --------------------------------------------------------------------------- read


async def test_list_by_reference_finds_only_that_merchants_matching_checkout(api: Api) -> None:
    wanted = await api.created(checkout_reference="wanted")
    await api.created(checkout_reference="other")
    await api.created(key=OTHER_KEY, merchant_code=OTHER_MERCHANT, checkout_reference="wanted")

    status, found = await api.call("GET", "/v0.1/checkouts", query={"checkout_reference": "wanted"})

    assert status == 200
    assert [c["id"] for c in found] == [wanted["id"]]
    assert found[0]["hosted_checkout_url"] == wanted["hosted_checkout_url"]


async def test_a_key_acting_for_several_merchants_sees_each_ones_checkouts(
    api: Api, state: SandboxState
) -> None:
    state.accounts["sup_sk_both"] = frozenset({MERCHANT, OTHER_MERCHANT})
    mine = await api.created()
    theirs = await api.created(key=OTHER_KEY, merchant_code=OTHER_MERCHANT)

    _, found = await api.call(
        "GET",
        "/v0.1/checkouts",
        key="sup_sk_both",
        query={"checkout_reference": "order-1-attempt-1"},
    )

    assert [(c["id"], c["merchant_code"]) for c in found] == [
        (mine["id"], MERCHANT),
        (theirs["id"], OTHER_MERCHANT),
    ]
    assert (await api.get(theirs["id"], key="sup_sk_both"))[0] == 200
    # References stay unique per merchant, and the key may pay only its own merchants.
    assert (await api.create(key="sup_sk_both", merchant_code=OTHER_MERCHANT))[0] == 409
    assert (await api.create(key="sup_sk_both", merchant_code="MTHIRD"))[0] == 403
    _, only_mine = await api.call("GET", "/v0.1/checkouts")
    assert [c["id"] for c in only_mine] == [mine["id"]]


async def test_list_of_an_unused_reference_is_empty(api: Api) -> None:
    await api.created()

    status, found = await api.call("GET", "/v0.1/checkouts", query={"checkout_reference": "no"})

    assert (status, found) == (200, [])


async def test_get_answers_the_checkout(api: Api) -> None:
    created = await api.created()

    status, body = await api.get(created["id"])

    assert status == 200
    assert body["id"] == created["id"]
    assert body["status"] == "PENDING"
    assert body["redirect_url"] == "https://cart.example/orders/1"


async def test_get_of_an_unknown_or_foreign_checkout_answers_404(api: Api) -> None:
    created = await api.created()

    assert await api.get("no-such-checkout") == (
        404,
        {"error_code": "NOT_FOUND", "message": "Resource not found"},
    )
    status, _ = await api.get(created["id"], key=OTHER_KEY)
    assert status == 404


# --------------------------------------------------------------------------- hosted page


async def test_hosted_page_shows_merchant_description_amount_and_both_buttons(
    client: QuartClient, api: Api
) -> None:
    checkout = await api.created()

    status, html = await page_text(client, checkout["id"])

    assert status == 200
    assert "Rose Ash Sandbox Shop" in html
    assert "Order 1 at the Rose Ash co-op" in html
    assert "£10.10" in html
    assert 'name="outcome" value="paid"' in html
    assert 'name="outcome" value="failed"' in html
    assert '<form method="post">' in html


async def test_hosted_page_of_an_unknown_checkout_is_404(client: QuartClient) -> None:
    status, html = await page_text(client, "nope")

    assert status == 404
    assert "Checkout not found" in html
    assert (await pay(client, "nope")).status_code == 404


async def test_paying_redirects_303_and_records_a_successful_transaction(
    client: QuartClient, api: Api, clock: Clock
) -> None:
    checkout = await api.created()
    clock.moment = START + timedelta(minutes=3)

    response = await pay(client, checkout["id"])

    assert response.status_code == 303
    assert response.headers["Location"] == "https://cart.example/orders/1"
    _, body = await api.get(checkout["id"])
    assert body["status"] == "PAID"
    [txn] = body["transactions"]
    assert txn["status"] == "SUCCESSFUL"
    assert (txn["amount"], txn["currency"]) == (10.1, "GBP")
    assert txn["timestamp"] == "2025-03-01T12:03:00.000Z"
    assert re.fullmatch(r"T[A-Z0-9]{9}", txn["transaction_code"])
    assert body["transaction_id"] == txn["id"]


async def test_paying_without_redirect_url_shows_a_result_page(
    client: QuartClient, api: Api
) -> None:
    checkout = await api.created(redirect_url=None)

    response = await pay(client, checkout["id"])

    assert response.status_code == 200
    assert "Payment successful" in await response.get_data(as_text=True)


async def test_an_unknown_outcome_changes_nothing(client: QuartClient, api: Api) -> None:
    checkout = await api.created()

    response = await pay(client, checkout["id"], outcome="maybe")

    assert response.status_code == 400
    _, body = await api.get(checkout["id"])
    assert (body["status"], body["transactions"]) == ("PENDING", [])


@pytest.mark.parametrize("amount", [11.00, 42.01, 42.76, 42.91])
async def test_sandbox_test_amounts_always_fail_even_when_paid(
    client: QuartClient, api: Api, amount: float
) -> None:
    checkout = await api.created(amount=amount)

    response = await pay(client, checkout["id"], "paid")

    assert response.status_code == 303
    _, body = await api.get(checkout["id"])
    assert body["status"] == "FAILED"
    assert [t["status"] for t in body["transactions"]] == ["FAILED"]
    assert "transaction_id" not in body


async def test_declined_payment_is_failed_but_can_still_be_paid(
    client: QuartClient, api: Api
) -> None:
    checkout = await api.created(redirect_url=None)

    declined = await pay(client, checkout["id"], "failed")
    assert "Payment declined" in await declined.get_data(as_text=True)
    _, body = await api.get(checkout["id"])
    assert body["status"] == "FAILED"

    status, html = await page_text(client, checkout["id"])
    assert status == 200
    assert "declined" in html
    assert 'value="paid"' in html

    paid = await pay(client, checkout["id"], "paid")
    assert paid.status_code == 200
    _, body = await api.get(checkout["id"])
    assert body["status"] == "PAID"
    assert [t["status"] for t in body["transactions"]] == ["FAILED", "SUCCESSFUL"]
    assert body["transaction_id"] == body["transactions"][1]["id"]


async def test_a_paid_checkout_cannot_be_paid_again(
    client: QuartClient, api: Api, webhooks: Webhooks
) -> None:
    checkout = await api.created()
    await pay(client, checkout["id"])

    again = await pay(client, checkout["id"])

    assert again.status_code == 409
    assert "already been paid" in await again.get_data(as_text=True)
    _, html = await page_text(client, checkout["id"])
    assert "already been paid" in html
    assert 'value="paid"' not in html
    _, body = await api.get(checkout["id"])
    assert len(body["transactions"]) == 1
    assert len(webhooks.calls) == 1


# --------------------------------------------------------------------------- webhooks


async def test_each_outcome_sends_the_webhook_to_return_url(
    client: QuartClient, api: Api, webhooks: Webhooks
) -> None:
    checkout = await api.created()

    await pay(client, checkout["id"], "failed")
    await pay(client, checkout["id"], "paid")

    expected = (
        "https://cart.example/webhooks/sumup/1",
        {"event_type": "CHECKOUT_STATUS_CHANGED", "id": checkout["id"]},
    )
    assert webhooks.calls == [expected, expected]


async def test_webhook_copies_are_sent_at_the_same_time(
    client: QuartClient, api: Api, state: SandboxState, webhooks: Webhooks
) -> None:
    state.webhook_copies = 2
    checkout = await api.created()

    await pay(client, checkout["id"])

    assert len(webhooks.calls) == 2
    assert webhooks.calls[0] == webhooks.calls[1]
    assert webhooks.most_in_flight == 2


async def test_no_return_url_means_no_webhook(
    client: QuartClient, api: Api, webhooks: Webhooks
) -> None:
    checkout = await api.created(return_url=None)

    await pay(client, checkout["id"])

    assert webhooks.calls == []


async def test_a_failing_webhook_does_not_fail_the_payment(
    client: QuartClient, api: Api, state: SandboxState
) -> None:
    async def broken(url: str, payload: dict[str, Any]) -> None:
        raise ConnectionError("shop is down")

    state.deliver_webhook = broken
    checkout = await api.created()

    response = await pay(client, checkout["id"])

    assert response.status_code == 303
    _, body = await api.get(checkout["id"])
    assert body["status"] == "PAID"


async def test_default_webhook_delivery_swallows_connection_errors() -> None:
    # Port 9 (discard) is closed on test machines: the POST is refused.
    await post_webhook("http://127.0.0.1:9/hook", {"event_type": "X", "id": "1"})


# --------------------------------------------------------------------------- expiry

VALID_UNTIL = "2025-03-01T12:10:00+00:00"


async def assert_closed_for_good(
    client: QuartClient, api: Api, webhooks: Webhooks, checkout_id: str
) -> None:
    """The hosted page says the link is dead and no post can take money through it."""
    status, html = await page_text(client, checkout_id)
    assert status == 200
    assert "This payment link has expired" in html
    assert "Nothing can be paid" in html
    assert "<form" not in html
    assert 'value="paid"' not in html
    for outcome in ("paid", "failed", "maybe"):
        response = await pay(client, checkout_id, outcome)
        assert response.status_code == 409, outcome
        assert "This payment link has expired" in await response.get_data(as_text=True)
    _, body = await api.get(checkout_id)
    assert (body["status"], body["transactions"]) == ("EXPIRED", [])
    assert webhooks.calls == []


async def test_a_checkout_expires_at_its_valid_until(
    client: QuartClient, api: Api, clock: Clock, webhooks: Webhooks
) -> None:
    checkout = await api.created(valid_until=VALID_UNTIL)
    assert checkout["valid_until"] == VALID_UNTIL

    clock.moment = START + timedelta(minutes=9, seconds=59)
    _, body = await api.get(checkout["id"])
    assert body["status"] == "PENDING"
    assert 'value="paid"' in (await page_text(client, checkout["id"]))[1]

    clock.moment = START + timedelta(minutes=10)
    _, body = await api.get(checkout["id"])
    assert (body["status"], body["valid_until"]) == ("EXPIRED", VALID_UNTIL)
    await assert_closed_for_good(client, api, webhooks, checkout["id"])


async def test_without_valid_until_a_checkout_never_expires(
    client: QuartClient, api: Api, clock: Clock
) -> None:
    checkout = await api.created()
    assert checkout["valid_until"] is None

    clock.moment = START + timedelta(days=3)

    _, body = await api.get(checkout["id"])
    assert (body["status"], body["valid_until"]) == ("PENDING", None)
    assert 'value="paid"' in (await page_text(client, checkout["id"]))[1]
    assert (await pay(client, checkout["id"])).status_code == 303
    _, body = await api.get(checkout["id"])
    assert body["status"] == "PAID"


async def test_a_failed_checkout_expires_at_its_valid_until_too(
    client: QuartClient, api: Api, clock: Clock, webhooks: Webhooks
) -> None:
    checkout = await api.created(valid_until=VALID_UNTIL)
    await pay(client, checkout["id"], "failed")
    webhooks.calls.clear()

    clock.moment = START + timedelta(minutes=5)
    assert (await api.get(checkout["id"]))[1]["status"] == "FAILED"
    clock.moment = START + timedelta(minutes=10)

    _, body = await api.get(checkout["id"])
    assert body["status"] == "EXPIRED"
    assert [t["status"] for t in body["transactions"]] == ["FAILED"]
    assert (await pay(client, checkout["id"])).status_code == 409
    assert len((await api.get(checkout["id"]))[1]["transactions"]) == 1
    assert webhooks.calls == []


async def test_a_paid_checkout_stays_paid_after_its_valid_until(
    client: QuartClient, api: Api, clock: Clock
) -> None:
    checkout = await api.created(valid_until=VALID_UNTIL)
    await pay(client, checkout["id"])

    clock.moment = START + timedelta(days=2)

    _, body = await api.get(checkout["id"])
    assert body["status"] == "PAID"
    _, html = await page_text(client, checkout["id"])
    assert "already been paid" in html
    assert "<form" not in html


@pytest.mark.parametrize(
    "sent",
    ["2025-03-01T12:10:00Z", "2025-03-01T13:10:00+01:00", "2025-03-01T12:10:00.000+00:00"],
)
async def test_valid_until_is_answered_in_utc_as_sumup_does(api: Api, sent: str) -> None:
    created = await api.created(valid_until=sent)

    _, fetched = await api.get(created["id"])
    _, [listed] = await api.call("GET", "/v0.1/checkouts")

    assert created["valid_until"] == fetched["valid_until"] == listed["valid_until"] == VALID_UNTIL


# --------------------------------------------------------------------------- deactivate


async def test_deactivate_answers_200_expired_and_stops_payment(
    client: QuartClient, api: Api, webhooks: Webhooks
) -> None:
    checkout = await api.created()

    status, body = await api.call("DELETE", f"/v0.1/checkouts/{checkout['id']}")

    assert (status, body["id"], body["status"]) == (200, checkout["id"], "EXPIRED")
    await assert_closed_for_good(client, api, webhooks, checkout["id"])


async def test_deactivating_a_failed_checkout_closes_it(
    client: QuartClient, api: Api, webhooks: Webhooks
) -> None:
    checkout = await api.created()
    await pay(client, checkout["id"], "failed")

    status, body = await api.call("DELETE", f"/v0.1/checkouts/{checkout['id']}")

    assert (status, body["status"]) == (200, "EXPIRED")
    assert [t["status"] for t in body["transactions"]] == ["FAILED"]
    assert (await pay(client, checkout["id"])).status_code == 409
    _, body = await api.get(checkout["id"])
    assert (body["status"], len(body["transactions"])) == ("EXPIRED", 1)
    assert len(webhooks.calls) == 1  # the decline's, none for the refused payment


async def test_deactivating_an_expired_checkout_answers_it_again(api: Api, clock: Clock) -> None:
    closed = await api.created(checkout_reference="closed")
    await api.call("DELETE", f"/v0.1/checkouts/{closed['id']}")
    lapsed = await api.created(checkout_reference="lapsed", valid_until=VALID_UNTIL)
    clock.moment = START + timedelta(hours=1)

    for checkout in (closed, lapsed):
        status, body = await api.call("DELETE", f"/v0.1/checkouts/{checkout['id']}")
        assert (status, body["id"], body["status"]) == (200, checkout["id"], "EXPIRED")


async def test_deactivating_a_paid_checkout_answers_409(client: QuartClient, api: Api) -> None:
    checkout = await api.created()
    await pay(client, checkout["id"])

    status, body = await api.call("DELETE", f"/v0.1/checkouts/{checkout['id']}")

    assert status == 409
    assert body["error_code"] == "CHECKOUT_PROCESSED"
    _, body = await api.get(checkout["id"])
    assert body["status"] == "PAID"


async def test_deactivating_an_unknown_or_foreign_checkout_answers_404(api: Api) -> None:
    mine = await api.created()

    status, body = await api.call("DELETE", "/v0.1/checkouts/nope")
    foreign, _ = await api.call("DELETE", f"/v0.1/checkouts/{mine['id']}", key=OTHER_KEY)

    assert (status, body["error_code"], foreign) == (404, "NOT_FOUND", 404)
    assert (await api.get(mine["id"]))[1]["status"] == "PENDING"


# --------------------------------------------------------------------------- refunds


async def paid_transaction(client: QuartClient, api: Api, amount: float = 10.1) -> str:
    checkout = await api.created(amount=amount)
    await pay(client, checkout["id"])
    _, body = await api.get(checkout["id"])
    return str(body["transactions"][0]["id"])


async def test_a_full_refund_answers_201_and_marks_the_transaction_refunded(
    client: QuartClient, api: Api
) -> None:
    txn_id = await paid_transaction(client, api)

    assert await api.refund(txn_id) == (201, {})

    _, [checkout] = await api.call("GET", "/v0.1/checkouts")
    assert checkout["status"] == "PAID"
    assert checkout["transactions"][0]["status"] == "REFUNDED"
    status, body = await api.refund(txn_id)
    assert status == 409
    assert body["title"] == "Conflict"


async def test_partial_refunds_stop_at_what_was_paid(client: QuartClient, api: Api) -> None:
    txn_id = await paid_transaction(client, api, amount=10.0)

    assert (await api.refund(txn_id, 4.0))[0] == 201

    status, body = await api.refund(txn_id, 7.0)
    assert status == 422
    assert body["errors"][0]["max_refundable_amount"] == 6.0
    assert (await api.refund(txn_id, 6.0))[0] == 201
    assert (await api.refund(txn_id, 0.01))[0] == 409


async def test_a_partial_refund_marks_the_transaction_refunded_and_the_rest_can_follow(
    client: QuartClient, api: Api, state: SandboxState
) -> None:
    txn_id = await paid_transaction(client, api, amount=10.0)

    assert await api.refund(txn_id, 2.5) == (201, {})

    _, [checkout] = await api.call("GET", "/v0.1/checkouts")
    assert (checkout["status"], checkout["transaction_id"]) == ("PAID", txn_id)
    assert [t["status"] for t in checkout["transactions"]] == ["REFUNDED"]
    status, body = await api.refund(txn_id, 7.51)
    assert status == 422
    assert body["errors"][0]["max_refundable_amount"] == 7.5
    found = state.find_transaction(MERCHANT, txn_id)
    assert found is not None and found[1].refunded == Decimal("2.5")
    assert await api.refund(txn_id) == (201, {})  # no amount: all that is left
    assert found[1].refunded == Decimal("10.0")
    status, body = await api.refund(txn_id, 0.01)
    assert (status, body["detail"]) == (
        409,
        "The transaction is not refundable in its current state",
    )


@pytest.mark.parametrize("amount", [0, -5])
async def test_a_refund_of_nothing_answers_400(
    client: QuartClient, api: Api, amount: float
) -> None:
    txn_id = await paid_transaction(client, api)

    status, body = await api.refund(txn_id, amount)

    assert status == 400
    assert body["detail"] == "amount must be greater than zero"


async def test_refunding_a_failed_transaction_answers_409(client: QuartClient, api: Api) -> None:
    checkout = await api.created(amount=11.0)
    await pay(client, checkout["id"])
    _, body = await api.get(checkout["id"])

    status, _ = await api.refund(body["transactions"][0]["id"])

    assert status == 409


async def test_refund_of_an_unknown_transaction_answers_404(api: Api) -> None:
    status, body = await api.refund("no-such-transaction")

    assert (status, body["detail"]) == (404, "Transaction not found")


async def test_refund_for_another_merchant_answers_403_and_a_bad_key_401(
    client: QuartClient, api: Api
) -> None:
    txn_id = await paid_transaction(client, api)

    assert (await api.refund(txn_id, merchant=OTHER_MERCHANT))[0] == 403
    assert (await api.refund(txn_id, key="sup_sk_wrong"))[0] == 401
    status, body = await api.refund(txn_id, key=OTHER_KEY, merchant=OTHER_MERCHANT)
    assert status == 404  # the other merchant cannot even see it
    assert (await api.refund(txn_id))[0] == 201


# --------------------------------------------------------------------------- faults


async def test_fault_500_breaks_the_api_until_cleared_but_not_the_page(
    client: QuartClient, api: Api, state: SandboxState
) -> None:
    checkout = await api.created()
    state.fault = "500"
    headers = {"Authorization": f"Bearer {KEY}"}

    for method, path in [
        ("POST", "/v0.1/checkouts"),
        ("GET", "/v0.1/checkouts"),
        ("GET", f"/v0.1/checkouts/{checkout['id']}"),
        ("DELETE", f"/v0.1/checkouts/{checkout['id']}"),
        ("POST", "/v1.0/merchants/MSANDBOX/payments/x/refunds"),
    ]:
        response = await client.open(PREFIX + path, method=method, headers=headers, json={})
        assert response.status_code == 500, path
        assert (await response.get_json())["status"] == 500
    assert (await page_text(client, checkout["id"]))[0] == 200

    state.fault = None
    assert (await api.get(checkout["id"]))[0] == 200


async def test_fault_timeout_answers_late_but_does_the_work(api: Api, state: SandboxState) -> None:
    state.fault = "timeout"
    state.fault_delay = 0.2

    started = time.monotonic()
    status, body = await api.create()
    elapsed = time.monotonic() - started

    assert status == 201
    assert elapsed >= 0.2
    assert body["id"] in state.checkouts


async def test_fault_late_does_the_work_then_answers_late(
    client: QuartClient, api: Api, state: SandboxState
) -> None:
    state.fault = "late"
    state.fault_delay = 0.2
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"checkout_reference": "late", "amount": 1, "currency": "GBP", "merchant_code": MERCHANT}

    call = asyncio.create_task(client.post(f"{PREFIX}/v0.1/checkouts", headers=headers, json=body))
    await asyncio.sleep(0.1)

    assert [c.checkout_reference for c in state.checkouts.values()] == ["late"]
    assert not call.done()
    assert (await call).status_code == 201


# --------------------------------------------------------------------------- conformance


async def test_every_answer_the_sandbox_can_give_is_documented_by_sumup(
    client: QuartClient, api: Api, clock: Clock
) -> None:
    """Walk every operation through every answer; ``Api`` validates each against the spec."""
    checkout = await api.created(checkout_reference="c1")
    await api.create(checkout_reference=None)
    await api.create(key="sup_sk_wrong")
    await api.create(merchant_code=OTHER_MERCHANT)
    await api.create(checkout_reference="c1")

    await api.call("GET", "/v0.1/checkouts", query={"checkout_reference": "c1"})
    await api.call("GET", "/v0.1/checkouts", key="sup_sk_wrong")

    await api.get(checkout["id"])
    await api.get(checkout["id"], key="sup_sk_wrong")
    await api.get("nope")

    to_pay = await api.created(checkout_reference="c2", valid_until="2025-03-01T13:00:00Z")
    await pay(client, to_pay["id"], "failed")
    await pay(client, to_pay["id"], "paid")
    _, paid = await api.get(to_pay["id"])  # with transactions of both kinds
    txn_id = paid["transactions"][1]["id"]
    declined = await api.created(checkout_reference="c3")
    await pay(client, declined["id"], "failed")
    lapsing = await api.created(checkout_reference="c4", valid_until="2025-03-01T12:30:00Z")
    await api.call("DELETE", f"/v0.1/checkouts/{checkout['id']}")  # pending
    await api.call("DELETE", f"/v0.1/checkouts/{checkout['id']}")  # already closed
    await api.call("DELETE", f"/v0.1/checkouts/{declined['id']}")  # failed
    await api.call("DELETE", f"/v0.1/checkouts/{to_pay['id']}")  # paid
    await api.call("DELETE", "/v0.1/checkouts/nope")
    await api.call("DELETE", "/v0.1/checkouts/nope", key="sup_sk_wrong")

    await api.refund(txn_id, 0)
    await api.refund(txn_id, merchant=OTHER_MERCHANT)
    await api.refund("nope")
    await api.refund(txn_id, 99.0)
    await api.refund(txn_id, 1.0)  # partial
    await api.refund(txn_id, 99.0)  # more than is left
    await api.refund(txn_id)
    await api.refund(txn_id)
    await api.refund(txn_id, key="sup_sk_wrong")
    clock.moment = START + timedelta(hours=2)
    _, listed = await api.call("GET", "/v0.1/checkouts")
    assert [c["status"] for c in listed] == ["EXPIRED", "PAID", "EXPIRED", "EXPIRED"]
    _, lapsed = await api.get(lapsing["id"])  # expired by its valid_until, not closed
    assert (lapsed["status"], lapsed["valid_until"]) == ("EXPIRED", "2025-03-01T12:30:00+00:00")
    await api.call("DELETE", f"/v0.1/checkouts/{lapsing['id']}")

    assert api.seen == {
        ("CreateCheckout", 201),
        ("CreateCheckout", 400),
        ("CreateCheckout", 401),
        ("CreateCheckout", 403),
        ("CreateCheckout", 409),
        ("ListCheckouts", 200),
        ("ListCheckouts", 401),
        ("GetCheckout", 200),
        ("GetCheckout", 401),
        ("GetCheckout", 404),
        ("DeactivateCheckout", 200),
        ("DeactivateCheckout", 401),
        ("DeactivateCheckout", 404),
        ("DeactivateCheckout", 409),
        ("RefundTransaction", 201),
        ("RefundTransaction", 400),
        ("RefundTransaction", 401),
        ("RefundTransaction", 403),
        ("RefundTransaction", 404),
        ("RefundTransaction", 409),
        ("RefundTransaction", 422),
    }


def test_the_conformance_check_itself_rejects_what_sumup_would_not_send(spec: OpenApi) -> None:
    # Guards against a vacuous checker: wrong shapes, undocumented codes and nulls fail.
    good = {"id": "1", "status": "PENDING", "amount": 1.0, "valid_until": None}
    assert spec.check("GET", "/v0.1/checkouts/1", 200, "application/json", good)
    bad_bodies: list[tuple[int, str, Any]] = [
        (200, "application/json", {**good, "amount": "1.00"}),
        (200, "application/json", {**good, "date": "yesterday"}),
        (200, "application/json", {**good, "currency": None}),
        (200, "application/json", [good]),
        (404, "application/json", {"error_code": 404}),
        (401, "application/json", {"title": "no type"}),
        (418, "application/json", {}),
        (200, "text/html", good),
    ]
    for status, media_type, body in bad_bodies:
        with pytest.raises(AssertionError):
            spec.check("GET", "/v0.1/checkouts/1", status, media_type, body)
