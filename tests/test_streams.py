"""engenho.streams.until: ends with its items or its event, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

from engenho.streams import until


class Source:
    """An async generator whose closing is observable; ``gate`` paces it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.gate = asyncio.Queue[None]()
        self.closed = False

    async def items(self) -> AsyncIterator[int]:
        try:
            for index in range(self.count + 1):
                await self.gate.get()
                if index == self.count:
                    return
                yield index
        finally:
            self.closed = True


async def test_items_pass_through_until_they_end() -> None:
    source = Source(3)
    for _ in range(4):
        source.gate.put_nowait(None)
    assert [item async for item in until(source.items(), asyncio.Event())] == [0, 1, 2]
    assert source.closed


async def test_the_event_ends_a_stream_that_waits_for_its_next_item() -> None:
    source, stop = Source(10), asyncio.Event()
    source.gate.put_nowait(None)
    seen: list[int] = []

    async def consume() -> None:
        seen.extend([item async for item in until(source.items(), stop)])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert seen == [0] and source.closed


async def test_a_cancelled_consumer_leaves_no_unobserved_task() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        source = Source(0)
        stream = until(source.items(), asyncio.Event())

        async def consume() -> None:
            async for _ in stream:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()
        source.gate.put_nowait(None)  # an abandoned step would now end in StopAsyncIteration
        await asyncio.sleep(0.01)
        gc.collect()
        await asyncio.sleep(0)
        assert source.closed
        assert reported == []
    finally:
        loop.set_exception_handler(None)
