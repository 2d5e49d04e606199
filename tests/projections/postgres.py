"""A throwaway PostgreSQL server for the contract tests (Debian's ``postgresql`` package).

Started once per test session in a temporary directory on a free loopback port, with
durability off (the tests need behaviour, not crash safety); each test gets a fresh database.
When the binaries, the asyncpg driver or an unprivileged user to run the server as are
missing, the PostgreSQL tests are skipped.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from attrs import frozen


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [str(Path(found).resolve().parent)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@frozen
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    run_as: list[str]

    @classmethod
    def start(cls) -> tuple[PostgresServer | None, str]:
        """Start a server, or return ``None`` and the reason it cannot be had."""
        if importlib.util.find_spec("asyncpg") is None:
            return None, "the asyncpg driver is not installed"
        bindir = _bindir()
        if bindir is None:
            return None, "PostgreSQL is not installed (Debian package postgresql)"
        run_as: list[str] = []
        root = Path(tempfile.mkdtemp(prefix="engenho-pg-"))
        if os.geteuid() == 0:  # the server refuses to run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                return None, "running as root and there is no postgres user"
            os.chown(root, user.pw_uid, user.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        server = cls(bindir, root, _free_port(), run_as)
        try:
            server._run(
                "initdb",
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            )
            options = (
                f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            server._run(
                "pg_ctl",
                "-D",
                str(root / "data"),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            server.stop()
            return None, f"PostgreSQL did not start: {exc}"
        return server, ""

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        import asyncpg

        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)
