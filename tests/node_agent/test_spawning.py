"""``engenho.node_agent.spawning``: commands run from the event loop without forking the agent
(vfork through ``subprocess.Popen``, the exit seen through a pidfd, the pipes read by the
loop): exit codes and output, input larger than a pipe holds, a command that cannot start,
a cancelled command is killed, and one line read from a process that keeps running."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engenho.node_agent.spawning import Child, Completed, run_command


async def test_exit_code_and_both_outputs() -> None:
    result = await run_command(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == Completed(3, b"out\n", b"err\n")


async def test_a_signal_shows_as_a_negative_code() -> None:
    result = await run_command(["sh", "-c", "kill -TERM $$"])
    assert result.code == -15


async def test_input_larger_than_a_pipe_buffer_is_fed_while_output_is_read() -> None:
    data = os.urandom(1 << 20)
    result = await run_command(["cat"], input=data)
    assert (result.code, result.stdout) == (0, data)


async def test_a_command_that_does_not_read_its_input_is_not_an_error() -> None:
    result = await run_command(["true"], input=b"x" * (1 << 20))
    assert result.code == 0


async def test_a_missing_program_raises_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        await run_command(["/nonexistent/program"])


async def test_cancelling_kills_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = asyncio.create_task(run_command(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"]))
    async with asyncio.timeout(30):
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Killed, and reaped without anyone waiting for it.
    async with asyncio.timeout(30):
        while _state(pid):
            await asyncio.sleep(0.01)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2 :].split()[0]


async def test_one_line_from_a_process_that_goes_on() -> None:
    child = Child.start(
        [sys.executable, "-c", "import sys, time; print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            assert await child.read_line() == b"ready\n"
    finally:
        child.kill()
        child.close()
        assert await child.wait() == -9


async def test_wait_after_exit_and_twice() -> None:
    child = Child.start(["sh", "-c", "exit 7"])
    assert await child.wait() == 7
    assert await child.wait() == 7
