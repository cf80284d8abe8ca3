"""Use cases that run to their end whatever becomes of the request that started them."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from rose_cart.ports import UNINTERRUPTED

log = logging.getLogger(__name__)

T = TypeVar("T")

# The event loop keeps only weak references to tasks: one whose caller has gone must not be
# collected half-way.
_RUNNING: set[asyncio.Task[Any]] = set()


async def to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in a task of its own that a cancelled caller does not stop.

    A visitor who goes away mid-checkout cancels their request; the checkout still makes
    its order and its payment link, so the visitor who comes back (or submits again) is
    sent to the same one rather than finding a half-made order. Inside, the units of work
    know nothing will cancel their statements (``UNINTERRUPTED``) and do not shield each
    one in a task of its own.
    """
    context = contextvars.copy_context()
    context.run(UNINTERRUPTED.set, True)
    task = asyncio.get_running_loop().create_task(work, context=context)
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    return await asyncio.shield(task)


def _finished(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # Retrieved here, as nobody may be waiting for it any more; the caller, if still
        # there, gets it from the shield all the same.
        log.debug("uninterrupted work ended with %r", task.exception())
