"""Async iteration that ends when an event is set: a followed log or a watch forwarded until
the server (or the node agent) starts shutting down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

__all__ = ["until"]

T = TypeVar("T")


async def until(items: AsyncIterable[T], stop: asyncio.Event) -> AsyncIterator[T]:
    """``items`` until they end or ``stop`` is set, whichever comes first.

    However it ends (``stop``, the consumer leaving, cancellation) the pending step is
    cancelled and reaped, so no task is left to finish unobserved (asyncio would log its
    ``StopAsyncIteration`` as never retrieved), and ``items`` is closed.
    """
    iterator = aiter(items)
    stopping = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield item
    finally:
        pending = [task for task in (step, stopping) if task is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            await closer()
