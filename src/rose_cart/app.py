"""create_app(settings): the Quart application with every blueprint and hook."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from quart import Quart

from rose_cart.bootstrap import Overrides, build_services, migrate
from rose_cart.config import Settings, load_settings
from rose_cart.services.container import Services
from rose_cart.web.blueprints import admin, api, cart, checkout, internal, orders
from rose_cart.web.connection import LeanHTTPConnection, LeanRequest
from rose_cart.web.contract import install_contract
from rose_cart.web.errors import register_error_handlers
from rose_cart.web.fastpath import FragmentFastPath
from rose_cart.web.hooks import register_hooks
from rose_cart.web.rendering import drop_idle_context_processors
from rose_cart.web.sessions import VerifiedCookieSessionInterface

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    overrides: Overrides | None = None,
    services: Services | None = None,
) -> Quart:
    settings = settings or load_settings()
    settings.check()
    app = Quart(__name__, template_folder="web/templates", static_folder="web/static")
    app.asgi_http_class = LeanHTTPConnection
    app.request_class = LeanRequest
    app.session_interface = VerifiedCookieSessionInterface()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="rose_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.config["ROSE_SETTINGS"] = settings
    built = services or build_services(settings, overrides)
    app.extensions["rose_cart"] = built

    register_error_handlers(app)
    install_contract(app)
    register_hooks(app)
    app.register_blueprint(checkout.bp)
    app.register_blueprint(cart.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(internal.bp)

    if settings.standalone:
        from rose_cart.standalone.web import bp as standalone_bp

        app.register_blueprint(standalone_bp)
        if "events" in built.extras:
            from rose_cart.standalone.events.web import api_bp as events_api_bp
            from rose_cart.standalone.events.web import bp as events_bp

            app.register_blueprint(events_bp)
            app.register_blueprint(events_api_bp)
            app.jinja_env.globals["site_links"] = [("/events/", "Events")]
        if settings.uses_sandbox:
            from rose_cart.standalone.sumup_sandbox import SandboxState, sandbox_blueprint

            sandbox = built.extras.get("sandbox")
            if sandbox is None:
                # SumUp has been seen to send the same notification twice at once.
                sandbox = SandboxState(webhook_copies=2)
                built.extras["sandbox"] = sandbox
            app.register_blueprint(sandbox_blueprint(sandbox), url_prefix="/sandbox/sumup")

    drop_idle_context_processors(app)
    # The summary and cart-mini's cache hits are answered before Quart's request machinery.
    app.asgi_app = FragmentFastPath(app, app.asgi_app)  # type: ignore[method-assign,assignment]

    background: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _start() -> None:
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate, settings)
        if settings.standalone and settings.demo_data and settings.uses_sandbox:
            await _demo_page_accounts(built)
        await built.start()
        events = built.extras.get("events")
        if settings.standalone and settings.demo_data and events is not None:
            from rose_cart.standalone.events.demo import seed_demo_events

            await seed_demo_events(events)
        if settings.run_reconciler:
            from rose_cart.worker import reconcile_forever, relay_forever

            background.append(
                asyncio.create_task(reconcile_forever(built, settings.reconcile_interval_seconds))
            )
            background.append(
                asyncio.create_task(relay_forever(built, settings.relay_interval_seconds))
            )

    @app.after_serving
    async def _stop() -> None:
        for task in background:
            task.cancel()
        await built.aclose()

    return app


#: The bakery takes payments into its own (sandbox) SumUp account; the other pages fall
#: back to the site's, as pages without a SumUp account of their own do.
DEMO_BAKERY_ACCOUNT = {
    "page_id": 101,
    "merchant_code": "MBAKERY",
    "api_key": "sup_sk_bakery",
    "checkout_prefix": "bakery",
}


async def _demo_page_accounts(built: Services) -> None:
    sandbox = built.extras.get("sandbox")
    if sandbox is not None:
        sandbox.accounts[DEMO_BAKERY_ACCOUNT["api_key"]] = DEMO_BAKERY_ACCOUNT["merchant_code"]
        sandbox.merchant_names[DEMO_BAKERY_ACCOUNT["merchant_code"]] = "Rose Ash Bakery"
    current = await built.page_configs.get(101)
    if not current["configured"]:
        await built.page_configs.ensure(**DEMO_BAKERY_ACCOUNT)
