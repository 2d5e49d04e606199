"""The agent's side of container shims: starting one, and learning when one exits.

``spawn_shim`` runs ``python -m <shim module> DIR`` (``oci_shim``, ``wasm_shim``) and returns
the one-line report the shim writes once the container runs (``shim_process``).
``ExitWatcher`` calls back when a shim process exits: through a pidfd in the event loop (no
task, no thread), or by polling ``/proc`` where pidfds are not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import engenho

__all__ = ["ExitWatcher", "spawn_shim"]

# The shim must import engenho even when the agent runs from a source tree.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(engenho.__file__)))


async def spawn_shim(
    directory: Path,
    module: str,
    *,
    who: str,
    python: str = sys.executable,
    report_wait: float | None = None,
) -> dict[str, Any]:
    """Start the shim ``module`` for the container in ``directory`` (its ``shim.json``
    written) and return its report: ``{"pid", "started_at"}`` or ``{"error"}``. ``who`` names
    the shim in errors ("the container monitor"); past ``report_wait`` seconds without a
    report the start has failed (None: wait as long as the shim lives)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    with _open_append(directory / "shim.log") as shim_log:
        process = await asyncio.create_subprocess_exec(
            python,
            "-m",
            module,
            str(directory),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=shim_log,
            start_new_session=True,
            env=env,
        )
    try:
        async with asyncio.timeout(report_wait):
            line = await process.stdout.readline() if process.stdout is not None else b""
    except TimeoutError:
        # The shim still holds the pipe; whatever it does next, this start has failed.
        return {"error": f"{who} did not report within {report_wait:.0f} s"}
    finally:
        await process.wait()
    if not line:
        return {"error": f"{who} died: " + (_tail(directory / "shim.log") or "no output")}
    try:
        report: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return {"error": f"{who} said {line!r}"}
    return report


def _open_append(path: Path) -> IO[bytes]:
    return path.open("ab")


def _tail(path: Path, lines: int = 5) -> str:
    """The last lines of the shim's own log (its traceback, when it died), on one line."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " / ".join(text.strip().splitlines()[-lines:])


class ExitWatcher:
    """Calls back once when a process exits."""

    def __init__(self) -> None:
        self._polls: set[asyncio.Task[None]] = set()

    def watch(self, pid: int, on_exit: Callable[[], None]) -> Callable[[], None]:
        """Arrange for ``on_exit()`` when ``pid`` exits (at once if it already has);
        returns a function that cancels the watch."""
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            loop.call_soon(on_exit)
            return lambda: None
        except (OSError, AttributeError):
            task = asyncio.create_task(self._poll(pid, on_exit), name=f"shim-exit-{pid}")
            self._polls.add(task)
            task.add_done_callback(self._polls.discard)

            def cancel() -> None:
                task.cancel()

            return cancel
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                loop.remove_reader(pidfd)
                os.close(pidfd)

        def fired() -> None:
            close()
            on_exit()

        loop.add_reader(pidfd, fired)
        return close

    async def _poll(self, pid: int, on_exit: Callable[[], None]) -> None:
        # Only where pidfds are missing (Linux < 5.3): nothing to wait on but time.
        while await asyncio.to_thread(Path(f"/proc/{pid}").exists):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        on_exit()

    async def close(self) -> None:
        for task in list(self._polls):
            task.cancel()
        for task in list(self._polls):
            with contextlib.suppress(asyncio.CancelledError):
                await task
