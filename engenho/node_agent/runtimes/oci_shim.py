"""The per-container monitor (conmon's job): ``python -m engenho.node_agent.runtimes.oci_shim DIR``.

The agent starts one per container start: forked by the runtime's launcher
(``shim_launcher``, which has imported this module once), or as above. It detaches (forks,
the parent exits, the child starts a session), so it outlives an agent restart, and it:

1. becomes a child subreaper, so the container's process, which ``crun create`` leaves
   behind, is reparented to it and it can ``waitpid`` for the exit status;
2. in a private mount namespace without ``/sys/fs/cgroup/unified``, when the host has hybrid
   cgroups with controllers on the v2 hierarchy (crun refuses that layout; without the v2
   mount it sees, and uses, the v1 controllers);
3. runs ``crun create`` with stdout and stderr on pipes (or a console socket for a tty), then
   ``crun start``, and reports ``{"pid", "started_at"}`` or ``{"error"}`` as one JSON line on
   its stdout, which the agent reads;
4. copies the output into the CRI log file (``engenho.node_agent.logs``) until the process
   exits, then writes ``exit.json`` (exit code, time, OOM kill), deletes the crun container
   (and with it its cgroup) and exits.

Its files in DIR: ``shim.json`` (what to run, written by the agent), ``state.json`` (its own
pid and start time, the container's pid and start time), ``exit.json``, ``shim.log``. It
imports only the standard library, the log writer and ``shim_process`` (what it shares with
the wasm shim), to start fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from engenho.node_agent.logs import STDERR, STDOUT, CriLogWriter
from engenho.node_agent.runtimes.shim_process import (
    announce_start,
    detach,
    directory_argument,
    fail_start,
    open_log,
    write_json,
)

__all__ = ["MODULE", "main"]

MODULE = "engenho.node_agent.runtimes.oci_shim"

_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2


class _Output:
    """Collects the pipes' bytes: held back until the container has started (until then
    they are crun's own complaints, which become the error instead of log lines)."""

    def __init__(self, writer: CriLogWriter) -> None:
        self.writer = writer
        self.lock = threading.Lock()
        self.started = False
        self.held: list[tuple[str, bytes]] = []

    def feed(self, stream: str, data: bytes) -> None:
        # Written under the lock, as ``start`` flushes: a pump must not get ahead of output
        # still held back (the log would have the container's last line before its first).
        with self.lock:
            if not self.started:
                self.held.append((stream, data))
                return
            self.writer.write(stream, data)

    def start(self) -> None:
        with self.lock:
            self.started = True
            for stream, data in self.held:
                self.writer.write(stream, data)
            self.held = []

    def held_text(self) -> str:
        with self.lock:
            return b"".join(data for _, data in self.held).decode(errors="replace").strip()


def _pump(fd: int, stream: str, output: _Output) -> None:
    with contextlib.suppress(OSError):
        while data := os.read(fd, 65536):
            output.feed(stream, data)
    with contextlib.suppress(OSError):
        os.close(fd)


def _hide_unified_cgroup(libc: ctypes.CDLL) -> None:
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making / private failed")
    if libc.umount2(b"/sys/fs/cgroup/unified", _MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), "unmounting /sys/fs/cgroup/unified failed")


def _crun_error(directory: Path, output: _Output, fallback: str) -> str:
    """crun's own message: the last line of its log, else what it printed."""
    with contextlib.suppress(OSError):
        lines = [
            line.strip()
            for line in (directory / "crun.log").read_text(errors="replace").splitlines()
            if line.strip()
        ]
        if lines:
            last = lines[-1]
            with contextlib.suppress(ValueError, AttributeError):
                last = str(json.loads(last).get("msg", last))
            return last
    return output.held_text() or fallback


def _receive_console(server: socket.socket, result: list[int]) -> None:
    with contextlib.suppress(OSError):
        connection, _ = server.accept()
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
            result.extend(fds)


def _oom_killed(files: list[str]) -> bool:
    for name in files:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
    return False


def run(directory: Path, channel: int) -> int:
    spec = json.loads((directory / "shim.json").read_text())
    crun: list[str] = spec["crun"]
    container_id: str = spec["id"]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    if spec.get("hide_unified_cgroup"):
        _hide_unified_cgroup(libc)

    writer = open_log(spec)
    output = _Output(writer)
    stdin_fd = os.open(os.devnull, os.O_RDONLY)
    if spec.get("stdin"):
        fifo = directory / "stdin"
        with contextlib.suppress(FileExistsError):
            os.mkfifo(fifo, 0o600)
        # Read-write, so that the container never sees end of input when no one attaches.
        os.close(stdin_fd)
        stdin_fd = os.open(fifo, os.O_RDWR)

    pumps: list[threading.Thread] = []
    console_dir: str | None = None
    create = [*crun, "create", "--bundle", str(directory), "--pid-file", str(directory / "pid")]
    if spec.get("tty"):
        console_dir = tempfile.mkdtemp(prefix="engenho-console-")
        console_path = os.path.join(console_dir, "sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(console_path)
        server.listen(1)
        masters: list[int] = []
        receiver = threading.Thread(target=_receive_console, args=(server, masters), daemon=True)
        receiver.start()
        create += ["--console-socket", console_path]
        out_write = err_write = os.open(os.devnull, os.O_WRONLY)
        read_fds: list[tuple[int, str]] = []
    else:
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        read_fds = [(out_read, STDOUT), (err_read, STDERR)]
    for fd, stream in read_fds:
        thread = threading.Thread(target=_pump, args=(fd, stream, output), daemon=True)
        thread.start()
        pumps.append(thread)

    created = subprocess.run(
        [*create, container_id],
        stdin=stdin_fd,
        stdout=out_write,
        stderr=err_write,
        check=False,
    )
    os.close(out_write)
    if err_write != out_write:
        os.close(err_write)
    if console_dir is not None:
        receiver.join(timeout=5)
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(console_path)
            os.rmdir(console_dir)
        if created.returncode == 0 and masters:
            thread = threading.Thread(target=_pump, args=(masters[0], STDOUT, output), daemon=True)
            thread.start()
            pumps.append(thread)
            if spec.get("stdin"):
                threading.Thread(target=_copy, args=(stdin_fd, masters[0]), daemon=True).start()

    if created.returncode != 0:
        for thread in pumps:
            thread.join(timeout=2)
        message = _crun_error(directory, output, f"crun create exited {created.returncode}")
        return _fail(directory, channel, writer, message)

    pid = int((directory / "pid").read_text().strip())
    started = subprocess.run(
        [*crun, "start", container_id], capture_output=True, check=False, stdin=subprocess.DEVNULL
    )
    if started.returncode != 0:
        message = _crun_error(
            directory,
            output,
            started.stderr.decode(errors="replace").strip() or "crun start failed",
        )
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
        subprocess.run([*crun, "delete", "--force", container_id], capture_output=True, check=False)
        return _fail(directory, channel, writer, message)

    output.start()
    announce_start(directory, channel, pid)

    status = _reap(pid)
    finished_at = time.time_ns()
    for thread in pumps:
        thread.join(timeout=5)
    writer.close()
    exit_code = os.waitstatus_to_exitcode(status) if status is not None else 137
    signalled = exit_code < 0
    if signalled:
        exit_code = 128 - exit_code
    oom = _oom_killed(list(spec.get("oom_files") or []))
    write_json(
        directory / "exit.json",
        {
            "exit_code": exit_code,
            "finished_at": finished_at,
            "oom_killed": oom,
            "signalled": signalled,
            "reason": "",
            "message": "" if status is not None else "the exit status was lost",
        },
    )
    # The exit is recorded; the runtime learns of it when this process exits, so the crun
    # container (and its cgroup, whose removal can wait on zombies for a while) is deleted
    # by a detached crun rather than before exiting.
    subprocess.Popen(
        [*crun, "delete", "--force", container_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return 0


def _copy(source: int, target: int) -> None:
    with contextlib.suppress(OSError):
        while data := os.read(source, 65536):
            os.write(target, data)


def _reap(pid: int) -> int | None:
    """Wait for ``pid`` (reparented to us, the subreaper), reaping any other children."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            # Not our child after all (no subreaper support): watch it until it is gone.
            while Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
            return None
        except InterruptedError:
            continue
        if reaped == pid:
            return status


def _fail(directory: Path, channel: int, writer: CriLogWriter, message: str) -> int:
    writer.close()
    return fail_start(directory, channel, message)


def main(argv: list[str] | None = None) -> int:
    directory = directory_argument(argv, MODULE)
    if directory is None:
        return 2
    channel = detach()
    try:
        return run(directory, channel)
    except Exception as exc:
        # Before the start, a failure is the start's (StartError). After it, the runtime
        # finds a monitor gone without exit.json and reports the exit as unknown.
        if not (directory / "state.json").exists():
            fail_start(directory, channel, f"the container monitor failed: {exc}")
        raise


if __name__ == "__main__":
    sys.exit(main())
