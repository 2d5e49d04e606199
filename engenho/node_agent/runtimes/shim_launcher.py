"""The shim launcher: ``python -m engenho.node_agent.runtimes.shim_launcher MODULE``, a zygote
that forks container shims with the shim module ``MODULE`` already imported.

A shim started as ``python -m MODULE DIR`` spends about 80 ms of CPU starting an interpreter
and importing before it runs anything, and a burst of pod starts runs one per container, all
at once (twenty on two cores took seconds). A fork of this small, single-threaded process,
which has done that once, costs about a millisecond.

The runtime (``shim_supervision.ShimLauncher``) starts a launcher with a ``SOCK_SEQPACKET``
socket as its fd 0 and sends one message per shim: the shim's directory, with two file
descriptors (SCM_RIGHTS): the shim's stdout (the pipe its report goes to) and stderr
(``shim.log``). The launcher forks; the child becomes what ``python -m MODULE DIR`` would
have been (stdin /dev/null, those stdout and stderr, ``MODULE.main([DIR])``): it detaches
(``shim_process.detach``) and goes on as the shim, in its own session, and the launcher
reaps the first process. Nothing is answered: the runtime reads the shim's report from the
pipe, or the pipe's end when the shim could not start (a failed fork is written to its
stderr). The launcher exits when the runtime's end of the socket closes; shims outlive both.

Only the standard library here: what the children need is ``MODULE``'s.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
import traceback
from collections.abc import Callable

__all__ = ["MODULE", "main"]

MODULE = "engenho.node_agent.runtimes.shim_launcher"

_MESSAGE_BYTES = 65536
_Main = Callable[[list[str]], int]


def serve(channel: socket.socket, shim_main: _Main) -> None:
    """Fork a shim for each message until the runtime closes its end."""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, _MESSAGE_BYTES, 2)
        except InterruptedError:
            continue
        except ConnectionError:
            return
        if not message and not fds:
            return  # the runtime's end is closed
        if len(fds) == 2 and message:
            _launch(channel, message.decode(), fds[0], fds[1], shim_main)
        for fd in fds:
            os.close(fd)


def _launch(channel: socket.socket, directory: str, out: int, err: int, shim_main: _Main) -> None:
    try:
        pid = os.fork()
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.write(err, f"the shim launcher could not fork: {exc}\n".encode())
        return
    if pid == 0:
        _become_shim(channel, directory, out, err, shim_main)
    # The first process leaves as soon as the shim has detached (a fork and an exit).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # EINTR is retried by Python (PEP 475)


def _become_shim(
    channel: socket.socket, directory: str, out: int, err: int, shim_main: _Main
) -> None:
    """In the forked child: what ``python -m MODULE DIR`` would run. Never returns."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # in place of the launcher's socket
        os.close(devnull)
        channel.detach()
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        code = shim_main([directory])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # Not the launcher's own exit: no atexit handlers, no buffers of its own to flush.
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {MODULE} SHIM_MODULE (a socket on stdin)", file=sys.stderr)
        return 2
    shim_main: _Main = importlib.import_module(args[0]).main
    channel = socket.socket(fileno=0)
    serve(channel, shim_main)
    return 0


if __name__ == "__main__":
    sys.exit(main())
