"""One wasm container's process: ``python -m engenho.node_agent.runtimes.wasm_shim DIR``.

The wasm runtime starts one per container start, as the OCI runtime starts its monitor; here
the monitor and the container are one process, because wasmtime runs the module in it. It
detaches (forks, the parent exits, the child starts a session) so that it outlives an agent
restart, and it:

1. loads the compiled module from the runtime's cache (``Module.deserialize_file``; compiling
   the ``.wasm`` only if the cache entry is missing or was made by another wasmtime), links
   WASI preview 1 (argv, environment, preopened directories, memory limit), instantiates it,
   writes ``state.json`` and reports ``{"pid", "started_at"}`` or ``{"error"}`` as one JSON
   line on its stdout, which the runtime reads;
2. runs the entry function (``_start``) in a worker thread; stdout and stderr reach the CRI log
   as the module writes them (wasmtime calls back on each write), so ``kubectl logs -f`` is
   live;
3. records the exit in ``exit.json``: ``proc_exit(n)`` gives n, a normal return 0, a trap 134
   (wasmtime's own CLI exits as if by SIGABRT) with the trap's message.

Signals are those of a process with default dispositions (a module cannot install handlers:
WASI preview 1 has no signals). One whose default is to terminate (SIGTERM, SIGINT, SIGHUP,
SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM) interrupts the module through wasmtime's epoch
interruption, which stops even a tight loop, and the exit is 128 + the signal (143 for
SIGTERM); one ignored by default (SIGWINCH, SIGURG, SIGCHLD, SIGCONT) changes nothing, so the
runtime's SIGKILL after the grace period ends the process (137, recorded by the runtime).

Its files in DIR: ``shim.json`` (written by the runtime), ``state.json``, ``exit.json``,
``shim.log``; detaching, reporting and the shape of those files are ``shim_process``'s, shared
with the OCI monitor. The runtime also uses this module's ``new_engine``/``compile_module`` so
that what it compiles into the cache is what this process can load.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime

from engenho.node_agent.logs import STDERR, STDOUT, CriLogWriter
from engenho.node_agent.runtimes.shim_process import (
    announce_start,
    detach,
    directory_argument,
    fail_start,
    open_log,
    write_json,
)

__all__ = [
    "MODULE",
    "TRAP_EXIT",
    "compile_module",
    "load_module",
    "main",
    "new_engine",
    "trap_message",
    "wasmtime_version",
]

MODULE = "engenho.node_agent.runtimes.wasm_shim"
TRAP_EXIT = 134
"""A trap's exit code: wasmtime's CLI exits with 128 + SIGABRT on a trap, as a native
program that aborts would."""
_INTERRUPT_WAIT = 1.0
"""How long a stopping module may take to reach an epoch check. Code in a host call (a WASI
``poll_oneoff`` sleep, a read) is not interrupted by epochs; the process exits anyway."""
_TERMINATING = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)


def wasmtime_version() -> str:
    """The version of the wasmtime Python package (and of the wasmtime it embeds)."""
    import importlib.metadata  # noqa: PLC0415 - only the runtime asks; the shim starts faster

    return importlib.metadata.version("wasmtime")


def new_engine() -> wasmtime.Engine:
    """The engine every wasm container runs on. Serialized modules load only into an engine
    of the same wasmtime and the same configuration, so the runtime compiles with this too."""
    config = wasmtime.Config()
    # Stopping a container must work on a module spinning in a loop: the shim bumps the
    # epoch and the module traps at its next loop header or call.
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def compile_module(engine: wasmtime.Engine, wasm: bytes, cache: Path) -> wasmtime.Module:
    """Compile ``wasm`` and write the compiled artifact to ``cache`` (atomically: a reader
    sees the old file, or none, or the whole new one). Raises ``wasmtime.WasmtimeError``."""
    module = wasmtime.Module(engine, wasm)
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=cache.parent, prefix=cache.name + ".")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(module.serialize())
        os.replace(name, cache)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return module


def load_module(engine: wasmtime.Engine, module_path: Path, cache: Path) -> wasmtime.Module:
    """The compiled module from ``cache``, compiling (and caching) ``module_path`` when the
    cache has no usable entry (missing, damaged, from another wasmtime)."""
    if cache.exists():
        with contextlib.suppress(wasmtime.WasmtimeError):
            return wasmtime.Module.deserialize_file(engine, str(cache))
    return compile_module(engine, module_path.read_bytes(), cache)


def trap_message(error: Exception) -> str:
    """The cause of a wasmtime error without its backtrace: ``wasm trap: wasm `unreachable`
    instruction executed``, ``unknown import: `env::f` has not been defined``."""
    text = str(error).strip()
    _, found, cause = text.rpartition("Caused by:")
    if found:
        lines = [line.strip() for line in cause.strip().splitlines() if line.strip()]
        # "Caused by:" may list several causes ("0: ...", "1: ..."): the last is the root.
        return lines[-1].split(": ", 1)[1] if lines[-1][:1].isdigit() else lines[-1]
    return text.splitlines()[0] if text else type(error).__name__


class _Run:
    """The module's run in the worker thread, and what the main thread learns of it. The
    worker writes a byte to ``wake`` at each step, as the signal machinery does on a signal,
    so the main thread sleeps in one ``read`` until something happens."""

    def __init__(self, spec: dict[str, Any], writer: CriLogWriter, wake: int) -> None:
        self.spec = spec
        self.writer = writer
        self.wake = wake
        self.engine = new_engine()
        self.started = threading.Event()
        self.finished = threading.Event()
        self.stop_signal: int | None = None
        self.start_error = ""
        self.exit_code = 0
        self.message = ""

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake, b"\0")

    def work(self) -> None:
        # Signals go to the main thread, whose read they interrupt; never to this one.
        signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATING)
        try:
            self._work()
        except Exception as exc:  # the thread must always say it finished
            if not self.started.is_set():
                self.start_error = f"the wasm runtime failed: {exc}"
            else:
                self.exit_code, self.message = TRAP_EXIT, trap_message(exc)
        finally:
            self.finished.set()
            self._poke()

    def _work(self) -> None:
        spec = self.spec
        argv: list[str] = spec["argv"]
        try:
            module = load_module(self.engine, Path(spec["module"]), Path(spec["cache"]))
            store = wasmtime.Store(self.engine)
            store.set_epoch_deadline(1)
            if spec.get("memory_limit") is not None:
                store.set_limits(memory_size=int(spec["memory_limit"]))
            wasi = wasmtime.WasiConfig()
            wasi.argv = argv
            wasi.env = [item.split("=", 1) for item in spec["env"]]
            for host, guest, writable in spec["preopens"]:
                wasi.preopen_dir(host, guest, fs_mutable=writable)
            wasi.stdout_custom = self._sink(STDOUT)
            wasi.stderr_custom = self._sink(STDERR)
            store.set_wasi(wasi)
            linker = wasmtime.Linker(self.engine)
            linker.define_wasi()
            instance = linker.instantiate(store, module)
            entry = instance.exports(store).get(spec["entry"])
            if not isinstance(entry, wasmtime.Func):
                self.start_error = (
                    f"the module exports no function {spec['entry']!r} to run: a container "
                    "runs a WASI command module (one that exports _start)"
                )
                return
            if entry.type(store).params or entry.type(store).results:
                self.start_error = f"the entry function {spec['entry']!r} must take no arguments"
                return
        except (wasmtime.WasmtimeError, wasmtime.Trap, OSError) as exc:
            self.start_error = trap_message(exc)
            return
        if self.stop_signal is not None:  # stopped before it ran
            self.exit_code = 128 + self.stop_signal
            self.started.set()
            return
        self.started.set()
        self._poke()
        try:
            entry(store)
        except wasmtime.ExitTrap as exit_trap:
            # A process's status keeps the low 8 bits of what it passed to exit().
            self.exit_code = exit_trap.code & 0xFF
        except wasmtime.Trap as trap:
            stopping = self.stopping()
            if stopping is not None and trap.trap_code is wasmtime.TrapCode.INTERRUPT:
                self.exit_code = 128 + stopping
            else:
                self._failed(argv, trap)
        except wasmtime.WasmtimeError as error:
            self._failed(argv, error)

    def _failed(self, argv: list[str], error: Exception) -> None:
        self.exit_code, self.message = TRAP_EXIT, trap_message(error)
        # What wasmtime's CLI prints, so that `kubectl logs` shows the backtrace too.
        name = argv[0] if argv else "module"
        self.writer.write(
            STDERR, f"Error: failed to run main module `{name}`\n\n{str(error).strip()}\n".encode()
        )

    def _sink(self, stream: str) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            self.writer.write(stream, data)

        return write

    def stopping(self) -> int | None:
        """The signal that stops the module, if one came (set by the main thread at any
        moment: read it through this call, not a narrowed attribute)."""
        return self.stop_signal

    def stop(self, number: int, _frame: object = None) -> None:
        """A terminating signal: interrupt the module (signal handler, main thread)."""
        if self.stop_signal is None:
            self.stop_signal = number
        self.engine.increment_epoch()


def run(directory: Path, channel: int) -> int:
    spec = json.loads((directory / "shim.json").read_text())
    writer = open_log(spec)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    state = _Run(spec, writer, wake_write)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for number in _TERMINATING:
        signal.signal(number, state.stop)
    # A signal writes its number to the pipe, so the read below wakes for signals too.
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    worker = threading.Thread(target=state.work, name="wasm", daemon=True)
    worker.start()

    while not (state.started.is_set() or state.finished.is_set()):
        os.read(wake_read, 64)
    if not state.started.is_set():
        return _fail(directory, channel, writer, state.start_error or "the module did not start")
    # The shim is the container's process: wasmtime runs the module in it.
    announce_start(directory, channel, os.getpid())

    while not state.finished.is_set() and state.stop_signal is None:
        os.read(wake_read, 64)
    if not state.finished.wait(_INTERRUPT_WAIT):
        # Stuck in a host call that epochs do not interrupt: the process ends anyway.
        state.exit_code = 128 + (state.stop_signal or signal.SIGTERM)
    finished_at = time.time_ns()
    writer.close()
    write_json(
        directory / "exit.json",
        {
            "exit_code": state.exit_code,
            "finished_at": finished_at,
            "signalled": state.stop_signal is not None,
            "reason": "",
            "message": state.message,
        },
    )
    return 0


def _fail(directory: Path, channel: int, writer: CriLogWriter, message: str) -> int:
    writer.write(STDERR, f"Error: {message}\n".encode())
    writer.close()
    return fail_start(directory, channel, message)


def main(argv: list[str] | None = None) -> int:
    directory = directory_argument(argv, MODULE)
    if directory is None:
        return 2
    channel = detach()
    try:
        code = run(directory, channel)
    except Exception as exc:
        fail_start(directory, channel, f"the wasm shim failed: {exc}")
        raise
    # The worker thread may still sit in a host call: leave without waiting for it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
