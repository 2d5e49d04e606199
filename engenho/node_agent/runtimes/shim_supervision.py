"""The agent's side of container shims: starting one, and learning when one exits.

``spawn_shim`` runs ``python -m <shim module> DIR`` (``oci_shim``, ``wasm_shim``) and returns
the one-line report the shim writes once the container runs (``shim_process``); it starts
the shim through ``spawning``, which does not fork the agent on the event loop.
``ShimLauncher`` does the same through a launcher process (``shim_launcher``) that forks
shims with their module imported, instead of an interpreter start-up per shim.
``ExitWatcher`` calls back when a shim process exits: through a pidfd in the event loop (no
task, no thread), or by polling ``/proc`` where pidfds are not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import engenho
from engenho.node_agent.runtimes.shim_launcher import MODULE as LAUNCHER_MODULE
from engenho.node_agent.spawning import Child, read_line, writable

__all__ = ["ExitWatcher", "ShimLauncher", "spawn_shim"]

_log = logging.getLogger(__name__)
_LAUNCHER_EXIT_WAIT = 5.0

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
    with _open_append(directory / "shim.log") as shim_log:
        child = Child.start(
            [python, "-m", module, str(directory)],
            stdout=subprocess.PIPE,
            stderr=shim_log,
            env=_shim_environment(),
            new_session=True,
        )
    try:
        async with asyncio.timeout(report_wait):
            line = await child.read_line()
            # The first process exits as soon as the shim has detached.
            await child.wait()
    except TimeoutError:
        # The shim still holds the pipe; whatever it does next, this start has failed.
        return {"error": f"{who} did not report within {report_wait:.0f} s"}
    finally:
        child.close()
    return _report(line, directory, who)


def _shim_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def _report(line: bytes, directory: Path, who: str) -> dict[str, Any]:
    """The shim's report line as a dict; an ``error`` when it died before writing one."""
    if not line:
        return {"error": f"{who} died: " + (_tail(directory / "shim.log") or "no output")}
    try:
        report: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return {"error": f"{who} said {line!r}"}
    return report


class ShimLauncher:
    """Starts shims of ``module`` through a launcher process (``shim_launcher``), which forks
    them with the module already imported instead of starting an interpreter for each; by
    ``spawn_shim`` when there is no launcher (it could not start, or died: a new one is
    started for the next shim). The launcher's own errors go to ``log``."""

    def __init__(self, module: str, log: Path, *, python: str = sys.executable) -> None:
        self.module = module
        self.python = python
        self._log_path = log
        self._launcher: Child | None = None
        self._channel: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        """The launcher process's, while there is one."""
        return self._launcher.pid if self._launcher is not None else None

    def start(self) -> None:
        """Start the launcher now (it imports the shim module while the runtime goes on)."""
        self._channel_or_none()

    def _channel_or_none(self) -> socket.socket | None:
        launcher = self._launcher
        if launcher is not None and launcher.process.poll() is None:
            return self._channel
        self._drop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with _open_append(self._log_path) as stream:
                self._launcher = Child.start(
                    [self.python, "-m", LAUNCHER_MODULE, self.module],
                    stdin=theirs.fileno(),
                    stderr=stream,
                    env=_shim_environment(),
                    new_session=True,
                )
        except OSError as exc:
            _log.warning("the shim launcher could not start: %s", exc)
            ours.close()
            return None
        finally:
            theirs.close()
        ours.setblocking(False)
        self._channel = ours
        return ours

    async def spawn(
        self, directory: Path, *, who: str, report_wait: float | None = None
    ) -> dict[str, Any]:
        """What ``spawn_shim`` does, through the launcher."""
        channel = self._channel_or_none()
        if channel is None:
            return await spawn_shim(
                directory, self.module, who=who, python=self.python, report_wait=report_wait
            )
        report_read, report_write = os.pipe()
        try:
            with _open_append(directory / "shim.log") as shim_log:
                await _send(channel, str(directory).encode(), [report_write, shim_log.fileno()])
        except OSError as exc:
            sent: OSError | None = exc
        else:
            sent = None
        finally:
            os.close(report_write)
        if sent is not None:
            # The launcher has gone: this shim starts the slow way, the next one gets a new
            # launcher.
            os.close(report_read)
            _log.warning("the shim launcher did not take a shim (%s): starting it directly", sent)
            self._drop()
            return await spawn_shim(
                directory, self.module, who=who, python=self.python, report_wait=report_wait
            )
        os.set_blocking(report_read, False)
        try:
            async with asyncio.timeout(report_wait):
                line = await read_line(report_read)
        except TimeoutError:
            return {"error": f"{who} did not report within {report_wait:.0f} s"}
        finally:
            os.close(report_read)
        return _report(line, directory, who)

    def _drop(self) -> None:
        """Forget a launcher that died or failed (killed, in case it is still dying)."""
        launcher = self._close_channel()
        if launcher is not None:
            launcher.kill()

    def _close_channel(self) -> Child | None:
        if self._channel is not None:
            self._channel.close()  # a launcher exits when it sees the end
            self._channel = None
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            launcher.close()
        return launcher

    async def close(self) -> None:
        """Stop the launcher (the shims it started live on)."""
        launcher = self._close_channel()
        if launcher is None:
            return
        try:
            async with asyncio.timeout(_LAUNCHER_EXIT_WAIT):
                await launcher.wait()
        except TimeoutError:
            launcher.kill()
            await launcher.wait()


async def _send(channel: socket.socket, message: bytes, fds: list[int]) -> None:
    while True:
        try:
            socket.send_fds(channel, [message], fds)
        except BlockingIOError:
            await writable(channel.fileno())  # a burst has filled the launcher's queue
        else:
            return


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
