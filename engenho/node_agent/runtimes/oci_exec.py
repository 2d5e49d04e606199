"""``crun exec``: a command in a running container, with pipes or a terminal.

With pipes, stdout and stderr are copied to the caller's sinks as they come and stdin is fed
from the caller's iterable. With a terminal, crun hands the pty's master over a console
socket (``--console-socket``, SCM_RIGHTS); its output is stdout, stdin is written to it and
resizes become ``TIOCSWINSZ``. ``--pid-file`` names the command's host pid, so that a
cancelled exec (a probe's timeout, a closed ``kubectl exec``) kills the command itself, not
just crun.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import struct
import tempfile
import termios
from collections.abc import AsyncIterable, Callable, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from engenho.node_agent.runtime import ByteSink, ExecError, TerminalSize

__all__ = ["crun_exec"]

_CRUN_FAILURES = (b"executable file", b"exec:", b"crun:", b"error")
_REAP_WAIT = 2.0
_DRAIN_WAIT = 1.0
_PID_POLLS = 50


async def crun_exec(
    crun: Sequence[str],
    container_id: str,
    argv: Sequence[str],
    *,
    stdin: AsyncIterable[bytes] | None,
    stdout: ByteSink | None,
    stderr: ByteSink | None,
    tty: bool,
    resize: AsyncIterable[TerminalSize] | None,
    running: Callable[[], bool],
) -> int:
    """Run ``argv`` in the container with ``crun`` (the command and its global options);
    the command's exit code. ``running`` tells whether the container still runs, to tell a
    failed exec from a failed command."""
    if not argv:
        raise ExecError("exec needs a command")
    with tempfile.TemporaryDirectory(prefix="engenho-exec-") as scratch:
        pid_file = Path(scratch) / "pid"
        command = [*crun, "exec", "--pid-file", str(pid_file)]
        if tty:
            return await _exec_tty(
                command, container_id, argv, Path(scratch), pid_file, stdin, stdout, resize
            )
        return await _exec_pipes(
            command, container_id, argv, pid_file, stdin, stdout, stderr, running
        )


async def _exec_pipes(
    command: list[str],
    container_id: str,
    argv: Sequence[str],
    pid_file: Path,
    stdin: AsyncIterable[bytes] | None,
    stdout: ByteSink | None,
    stderr: ByteSink | None,
    running: Callable[[], bool],
) -> int:
    # Pipes of our own rather than asyncio's: asyncio (3.11) ends ``wait()`` only once the
    # process has exited *and* its pipes are closed, and a command's background child can
    # hold them open for ever.
    loop = asyncio.get_running_loop()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    in_read, in_write = os.pipe() if stdin is not None else (None, None)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            container_id,
            *argv,
            stdin=in_read if in_read is not None else asyncio.subprocess.DEVNULL,
            stdout=out_write,
            stderr=err_write,
        )
    except OSError as exc:
        for fd in (out_read, err_read, in_write):
            if fd is not None:
                os.close(fd)
        raise ExecError(f"could not run crun exec: {exc}") from exc
    finally:
        for fd in (out_write, err_write, in_read):
            if fd is not None:
                os.close(fd)
    transports: list[asyncio.BaseTransport] = []
    errors = bytearray()

    async def pump(fd: int, sink: ByteSink | None, keep: bool) -> None:
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        transports.append(transport)
        while data := await reader.read(65536):
            if keep and len(errors) < 4096:
                errors.extend(data)
            if sink is not None:
                await sink(data)

    async def feed(fd: int) -> None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
            os.fdopen(fd, "wb", buffering=0),
        )
        transports.append(transport)
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        try:
            if stdin is not None:
                async for data in stdin:
                    writer.write(data)
                    await writer.drain()
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            writer.close()

    pumps = [
        asyncio.create_task(pump(out_read, stdout, False), name="exec-stdout"),
        asyncio.create_task(pump(err_read, stderr, True), name="exec-stderr"),
    ]
    helpers = (
        [asyncio.create_task(feed(in_write), name="exec-stdin")] if in_write is not None else []
    )
    try:
        waiter = asyncio.ensure_future(process.wait())
        pending: set[asyncio.Future[Any]] = {waiter, *pumps}
        while not waiter.done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            _raise_failures(done - {waiter})
        code = waiter.result()
        # What the command wrote before it exited is still in the pipes: read it to the end,
        # but not for ever (a background child of the command may keep them open).
        if pending:
            done, _ = await asyncio.wait(pending, timeout=_DRAIN_WAIT)
            _raise_failures(done)
    except BaseException:
        await _kill_exec(process, pid_file)
        raise
    finally:
        for task in (*pumps, *helpers):
            task.cancel()
        for task in (*pumps, *helpers):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        for transport in transports:
            transport.close()
    # crun exec exits with the command's status; it fails on its own account (with a message
    # of its own on stderr) only when it cannot exec at all.
    if code != 0 and not running():
        raise ExecError(f"container {container_id} is not running")
    if code in (1, 127, 255) and not _exists(pid_file) and errors.startswith(_CRUN_FAILURES):
        raise ExecError(errors.decode(errors="replace").strip())
    return code


def _raise_failures(done: set[asyncio.Future[Any]]) -> None:
    """Re-raise what a stream copier failed with (a sink whose client went away)."""
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _exec_tty(
    command: list[str],
    container_id: str,
    argv: Sequence[str],
    scratch: Path,
    pid_file: Path,
    stdin: AsyncIterable[bytes] | None,
    stdout: ByteSink | None,
    resize: AsyncIterable[TerminalSize] | None,
) -> int:
    socket_path = scratch / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    server.listen(1)
    server.setblocking(False)
    loop = asyncio.get_running_loop()
    errors_path = scratch / "stderr"
    errors_file = _open_write(errors_path)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            "--tty",
            "--console-socket",
            str(socket_path),
            container_id,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=errors_file,
        )
    except OSError as exc:
        server.close()
        raise ExecError(f"could not run crun exec: {exc}") from exc
    finally:
        errors_file.close()
    master: int | None = None
    waiter = asyncio.ensure_future(process.wait())
    try:
        accept = asyncio.ensure_future(loop.sock_accept(server))
        done, _ = await asyncio.wait({accept, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if accept not in done:
            accept.cancel()
            await waiter
            message = _read_text(errors_path)
            _refuse(message or "crun exec opened no terminal")
        connection, _ = accept.result()
        with connection:
            connection.setblocking(True)
            _, fds, _, _ = await asyncio.to_thread(socket.recv_fds, connection, 4096, 1)
        if not fds:
            _refuse("crun sent no terminal")
        master = fds[0]
        os.set_blocking(master, False)
        return await _bridge_tty(master, waiter, stdin, stdout, resize)
    except BaseException:
        await _kill_exec(process, pid_file)
        raise
    finally:
        server.close()
        if master is not None:
            with contextlib.suppress(OSError):
                os.close(master)


async def _bridge_tty(
    master: int,
    waiter: asyncio.Future[int],
    stdin: AsyncIterable[bytes] | None,
    stdout: ByteSink | None,
    resize: AsyncIterable[TerminalSize] | None,
) -> int:
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes | None] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's last user closed it
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data or None)

    async def forward() -> None:
        while (data := await output.get()) is not None:
            if stdout is not None:
                await stdout(data)

    async def feed() -> None:
        if stdin is None:
            return
        async for data in stdin:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(master, view)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                view = view[written:]

    async def sizes() -> None:
        if resize is None:
            return
        async for size in resize:
            with contextlib.suppress(OSError):
                fcntl.ioctl(
                    master,
                    termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.height, size.width, 0, 0),
                )

    loop.add_reader(master, readable)
    helpers = [
        asyncio.create_task(feed(), name="exec-tty-stdin"),
        asyncio.create_task(sizes(), name="exec-tty-resize"),
    ]
    forwarder = asyncio.create_task(forward(), name="exec-tty-stdout")
    try:
        code = await waiter
        # The command is gone; what it wrote may still be in the terminal: drain it briefly.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.shield(forwarder)
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(master)
        for task in (*helpers, forwarder):
            task.cancel()
        for task in (*helpers, forwarder):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
    return code


def _refuse(message: str) -> NoReturn:
    raise ExecError(message)


def _exists(path: Path) -> bool:
    return path.exists()


async def _kill_exec(process: asyncio.subprocess.Process, pid_file: Path) -> None:
    """Kill the exec'd command (crun exec's child, in the container), then let crun exec
    reap it and exit; kill crun exec only if it does not. (Killing crun exec first would
    leave the command running, or a zombie of the host's init in the container's cgroup.)"""
    pid: int | None = None
    # crun writes the pid file just after it starts the command: give it a moment.
    for _ in range(_PID_POLLS):
        pid = _read_pid(pid_file)
        if pid is not None or process.returncode is not None:
            break
        await asyncio.sleep(0.02)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REAP_WAIT):
                await process.wait()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REAP_WAIT):
                await process.wait()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _open_write(path: Path) -> IO[bytes]:
    return path.open("wb")
