"""Synchronous template rendering for the hot pages.

Quart renders with an async Jinja environment, which turns every block, include and loop
into coroutines; for a page whose context is ready before rendering starts (every value
and helper in our templates is plain, nothing awaits), a synchronous twin of the same
environment renders the same text for noticeably less CPU.
"""

from __future__ import annotations

from typing import Any

import flask.templating
from jinja2 import Environment, Template
from markupsafe import Markup
from quart import Quart, current_app
from quart.signals import before_render_template, template_rendered

_EXTENSION = "rose_cart_sync_jinja"


def sync_environment(app: Quart) -> Environment:
    """The app's Jinja environment without async: same loader, autoescaping, filters,
    tests and globals. Made on first use, once every filter has been registered."""
    env: Environment | None = app.extensions.get(_EXTENSION)
    if env is None:
        source = app.jinja_env
        env = Environment(
            loader=source.loader,
            autoescape=source.autoescape,
            auto_reload=source.auto_reload,
            extensions=[type(extension) for extension in source.extensions.values()],
            enable_async=False,
        )
        env.filters.update(source.filters)
        env.tests.update(source.tests)
        env.globals.update(source.globals)
        env.policies.update(source.policies)
        app.extensions[_EXTENSION] = env
    return env


def drop_idle_context_processors(app: Quart) -> None:
    """Every blueprint brings Flask's default context processor, which reads Flask's own
    request context: Quart never sets it, so it always adds nothing, yet being synchronous
    it is run in a worker thread on every render of the blueprint's pages. Quart's own
    processor (the app's) gives the templates ``g``, ``request`` and ``session``. Called
    once every blueprint has been registered."""
    # A private name of Flask's: should a release rename it, pages cost a little more, and
    # nothing else changes.
    idle = getattr(flask.templating, "_default_template_ctx_processor", None)
    if idle is None:
        return
    for processors in app.template_context_processors.values():
        while idle in processors:
            processors.remove(idle)


def template(name: str) -> Template:
    return sync_environment(current_app).get_template(name)


#: The header's cart badge by item count: it depends on nothing else.
_BADGES: dict[int, Markup] = {}


def cart_mini_html(count: int) -> Markup:
    """fragments/cart_mini.html for a cart of ``count`` items, rendered once per count."""
    html = _BADGES.get(count)
    if html is None:
        html = Markup(template("fragments/cart_mini.html").render(summary={"count": count}))
        if len(_BADGES) >= 1000:
            _BADGES.clear()
        _BADGES[count] = html
    return html


async def render_page(name: str, **context: Any) -> str:
    """``quart.render_template``, rendered synchronously: the same context processors and
    signals, the same text."""
    app: Quart = current_app._get_current_object()  # type: ignore[attr-defined]
    await app.update_template_context(context)
    page = sync_environment(app).get_template(name)
    await before_render_template.send_async(
        app,
        _sync_wrapper=app.ensure_async,  # type: ignore[arg-type]
        template=page,
        context=context,
    )
    text = page.render(context)
    await template_rendered.send_async(
        app,
        _sync_wrapper=app.ensure_async,  # type: ignore[arg-type]
        template=page,
        context=context,
    )
    return text
