"""Container logs (``pods/{name}/log``), read whole or followed as a stream of lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from types import TracebackType

import httpx

from engenho.client.transport import Params, Transport

__all__ = ["LogStream"]


class LogStream:
    """The lines of a container's log, as they are written when following.

    Use as ``async with client.log(...) as lines: async for line in lines: ...``: leaving
    the block closes the connection. Lines are text without their trailing newline; a last
    line the server ended without a newline is still yielded.
    """

    def __init__(self, transport: Transport, path: str, params: Params) -> None:
        self._transport = transport
        self._path = path
        self._params = params
        self._stack = AsyncExitStack()
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> LogStream:
        # A followed log may be quiet for hours: no read timeout.
        self._response = await self._stack.enter_async_context(
            self._transport.stream(
                "GET",
                self._path,
                params=self._params,
                accept="*/*",
                http_timeout=httpx.Timeout(30.0, read=None),
            )
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._response = None
        await self._stack.aclose()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        if self._response is None:
            raise RuntimeError("use the log stream inside 'async with'")
        pending = b""
        async for chunk in self._response.aiter_bytes():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace")
        if pending:
            yield pending.decode("utf-8", errors="replace")
