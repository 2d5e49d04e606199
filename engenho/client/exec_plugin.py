"""Exec credential plugins (``client.authentication.k8s.io/v1`` and ``v1beta1``).

The plugin is run with its args and env added to ours, plus ``KUBERNETES_EXEC_INFO``: an
ExecCredential whose ``spec.interactive`` says whether it may prompt and, with
``provideClusterInfo``, whose ``spec.cluster`` describes the server. Its standard output must
be an ExecCredential of the same apiVersion with ``status.token`` or a PEM
``clientCertificateData``/``clientKeyData`` pair. Its standard error goes to ours, as with
kubectl, so prompts and diagnostics reach the user.

``interactiveMode``: ``Never`` runs without standard input; ``IfAvailable`` passes it through
when it is a terminal; ``Always`` refuses to run unless it is one.

The credential is cached until its ``expirationTimestamp`` (forever without one) and
dropped when the server answers 401 (:meth:`ExecPlugin.invalidate`); concurrent requests
wait for a single run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from attrs import field, frozen

from engenho.client.errors import ExecPluginError
from engenho.client.kubeconfig import ExecConfig
from engenho.client.tls import CertificatePair

__all__ = ["ExecPlugin", "IssuedCredential"]


@frozen
class IssuedCredential:
    """What one run of a plugin returned."""

    token: str | None = field(default=None, repr=False)
    certificate: CertificatePair | None = None
    expires_at: float | None = None
    """Seconds since the epoch; None: valid until the server refuses it."""


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


class ExecPlugin:
    """Runs one configured plugin and caches what it returns."""

    def __init__(
        self,
        config: ExecConfig,
        *,
        cluster: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        stdin_is_terminal: Callable[[], bool] = _stdin_is_terminal,
    ) -> None:
        self.config = config
        self._cluster = dict(cluster) if cluster is not None else None
        self._clock = clock
        self._stdin_is_terminal = stdin_is_terminal
        self._cached: IssuedCredential | None = None
        self._lock = asyncio.Lock()
        self.runs = 0
        """How many times the plugin was run (for diagnostics and tests)."""

    def _valid(self, issued: IssuedCredential | None) -> bool:
        return issued is not None and (
            issued.expires_at is None or self._clock() < issued.expires_at
        )

    async def credential(self) -> IssuedCredential:
        """The cached credential, or a fresh one when it expired or was invalidated."""
        if self._valid(self._cached):
            assert self._cached is not None
            return self._cached
        async with self._lock:
            if not self._valid(self._cached):
                self._cached = await self._run()
            assert self._cached is not None
            return self._cached

    def invalidate(self) -> None:
        """Forget the cached credential (the server refused it)."""
        self._cached = None

    def _interactive(self) -> bool:
        mode = self.config.interactive_mode
        if mode == "Never":
            return False
        terminal = self._stdin_is_terminal()
        if mode == "Always" and not terminal:
            raise ExecPluginError(
                f"exec plugin {self.config.command!r} cannot run: its interactiveMode is Always "
                "but standard input is not a terminal"
            )
        return terminal

    def _exec_info(self, interactive: bool) -> bytes:
        spec: dict[str, Any] = {"interactive": interactive}
        if self.config.provide_cluster_info and self._cluster is not None:
            spec["cluster"] = self._cluster
        return orjson.dumps(
            {"apiVersion": self.config.api_version, "kind": "ExecCredential", "spec": spec}
        )

    async def _run(self) -> IssuedCredential:
        config = self.config
        interactive = self._interactive()
        env = {
            **os.environ,
            **dict(config.env),
            "KUBERNETES_EXEC_INFO": self._exec_info(interactive).decode(),
        }
        self.runs += 1
        try:
            process = await asyncio.create_subprocess_exec(
                config.command,
                *config.args,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            hint = f"\n{config.install_hint}" if config.install_hint else ""
            raise ExecPluginError(
                f"exec plugin {config.command!r} could not be started: {exc}{hint}"
            ) from exc
        try:
            stdout, _ = await process.communicate()
        except BaseException:
            # Cancelled while the plugin runs: do not leave it behind as an orphan.
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        if process.returncode != 0:
            raise ExecPluginError(
                f"exec plugin {config.command!r} failed with exit code {process.returncode}"
            )
        return self._parse(stdout)

    def _parse(self, stdout: bytes) -> IssuedCredential:
        command = self.config.command
        try:
            document = orjson.loads(stdout)
        except orjson.JSONDecodeError as exc:
            raise ExecPluginError(f"exec plugin {command!r} printed no valid JSON") from exc
        if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
            raise ExecPluginError(f"exec plugin {command!r} printed no ExecCredential")
        got = document.get("apiVersion")
        if got != self.config.api_version:
            raise ExecPluginError(
                f"exec plugin {command!r} is configured to use API version "
                f"{self.config.api_version}, plugin returned version {got}"
            )
        status = document.get("status")
        if not isinstance(status, dict):
            raise ExecPluginError(f"exec plugin {command!r} returned no status")
        token = status.get("token") or None
        cert = status.get("clientCertificateData") or None
        key = status.get("clientKeyData") or None
        if (cert is None) != (key is None):
            raise ExecPluginError(
                f"exec plugin {command!r} returned a client certificate without its key "
                "or a key without its certificate"
            )
        if token is None and cert is None:
            raise ExecPluginError(f"exec plugin {command!r} returned no token and no certificate")
        if not all(isinstance(v, str) for v in (token or "", cert or "", key or "")):
            raise ExecPluginError(f"exec plugin {command!r} returned a non-string credential")
        expires = status.get("expirationTimestamp")
        expires_at: float | None = None
        if expires:
            try:
                expires_at = datetime.fromisoformat(str(expires)).timestamp()
            except ValueError as exc:
                raise ExecPluginError(
                    f"exec plugin {command!r} returned a malformed expirationTimestamp {expires!r}"
                ) from exc
        return IssuedCredential(
            token=token,
            certificate=CertificatePair(cert.encode(), key.encode()) if cert and key else None,
            expires_at=expires_at,
        )
