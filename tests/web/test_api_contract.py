"""The JSON API against its own OpenAPI document, by schemathesis, in-process.

Every operation gets valid and invalid requests (bounded in number, from a fixed seed) and
every built-in check runs on every answer: no 5xx, only documented status codes, content
types and bodies, invalid data refused, valid data accepted, 405 with Allow for methods the
document does not list. A visitor who is logged in, with lines in the cart and an order,
sends them, so the answers are not all empty carts and 404s.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import seed as fixed_seed
from schemathesis.python import asgi

from rose_cart.app import create_app
from rose_cart.bootstrap import Overrides
from rose_cart.config import Settings
from rose_cart.standalone.siblings import (
    ReferenceBlog,
    ReferenceMarket,
    ReferenceSubscriber,
)
from rose_cart.web.contract import DOCUMENT_PATH, openapi_document_of
from tests.fakes import FakeClock, FakePaymentProvider

#: The app is made at import, as the document must be for pytest to collect one test per
#: operation; its database is a copy of the migrated template, made before the first request.
_DATABASE = Path(tempfile.mkdtemp(prefix="rose-cart-contract-")) / "cart.db"
atexit.register(shutil.rmtree, _DATABASE.parent, True)
contract_app = create_app(
    Settings(
        database_url=f"sqlite+aiosqlite:///{_DATABASE}",
        migrate_on_start=False,
        run_reconciler=False,
        demo_data=False,
    ),
    Overrides(
        market=ReferenceMarket(),
        blog=ReferenceBlog(),
        calendar=None,  # the standalone events sibling, on the same database
        clock=FakeClock(),
        payments=FakePaymentProvider(),
        subscriber=ReferenceSubscriber(),
    ),
)
schema = schemathesis.openapi.from_dict(openapi_document_of(contract_app))
schema.app = contract_app
schema.location = DOCUMENT_PATH


@pytest.fixture(scope="module")
def database(sqlite_template: Path) -> Iterator[None]:
    shutil.copy(sqlite_template, _DATABASE)
    yield
    asgi.shutdown_lifespans()  # the app's after_serving closes its services


@pytest.fixture(scope="module")
def shopper(database: None) -> Any:
    """A logged-in visitor with two lines in the cart and an order to look at."""
    client = asgi.get_client(contract_app)
    assert client.post("/auth/dev-login", json={"username": "schemathesis"}).status_code == 200
    for product_id in (1, 2):
        response = client.post("/api/v1/cart/items", json={"product_id": product_id})
        assert response.status_code == 201
    assert client.post("/api/v1/checkout", json={}).status_code == 201
    return client


@schema.parametrize()
@fixed_seed(20261121)
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_document(case: Any, shopper: Any) -> None:
    case.call_and_validate(session=shopper)
