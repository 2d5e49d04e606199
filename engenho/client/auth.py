"""Credentials: what a request presents, from the four standard sources.

- **anonymous**: nothing;
- **bearer token**: a fixed ``token``, or a ``tokenFile`` re-read whenever the file changes
  (service-account tokens are rotated in place), which takes precedence over ``token`` as in
  client-go; basic auth (``username``/``password``) is accepted too, for old configurations;
- **client certificate**: a PEM certificate and key presented in the TLS handshake;
- **exec plugin**: :class:`~engenho.client.exec_plugin.ExecPlugin`, whose token or
  certificate wins over the static ones and is refreshed after a 401.

The transport asks :meth:`Credentials.current` before every request and, when the server
answers 401, :meth:`Credentials.refresh` once; a refresh that yields a different credential
means the request is worth sending again.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from attrs import field, frozen

from engenho.client.errors import CredentialError
from engenho.client.exec_plugin import ExecPlugin
from engenho.client.tls import CertificatePair

__all__ = ["Credential", "Credentials", "TokenFile"]


@frozen
class Credential:
    """What one request presents: an ``Authorization`` header value and/or a certificate."""

    authorization: str | None = field(default=None, repr=False)
    certificate: CertificatePair | None = None


class TokenFile:
    """A bearer token kept in a file, read again whenever the file changes.

    A change is a new modification time, size or inode (so both in-place rewrites and the
    atomic renames kubelet uses for projected tokens are seen); checking costs one ``stat``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._token = ""

    def read(self, *, force: bool = False) -> str:
        try:
            info = os.stat(self.path)
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
            if force or stamp != self._stamp:
                token = self.path.read_text(encoding="utf-8").strip()
                self._stamp, self._token = stamp, token
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialError(f"cannot read the token file {self.path}: {exc}") from exc
        if not self._token:
            raise CredentialError(f"the token file {self.path} is empty")
        return self._token


class Credentials:
    """The credential sources of one user, combined by client-go's precedence."""

    def __init__(
        self,
        *,
        token: str | None = None,
        token_file: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        certificate: CertificatePair | None = None,
        exec_plugin: ExecPlugin | None = None,
    ) -> None:
        self._token = token
        self._token_file = TokenFile(token_file) if token_file is not None else None
        self._basic = (
            "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            if username
            else None
        )
        self._certificate = certificate
        self._exec = exec_plugin
        self._lock = asyncio.Lock()

    @property
    def anonymous(self) -> bool:
        return not (
            self._token or self._token_file or self._basic or self._certificate or self._exec
        )

    async def current(self) -> Credential:
        """The credential to send now (runs the exec plugin when its credential expired)."""
        if self._exec is not None:
            issued = await self._exec.credential()
            return Credential(
                authorization=f"Bearer {issued.token}" if issued.token else self._header(),
                certificate=issued.certificate or self._certificate,
            )
        return Credential(self._header(), self._certificate)

    def _header(self, *, force: bool = False) -> str | None:
        if self._token_file is not None:
            return f"Bearer {self._token_file.read(force=force)}"
        if self._token:
            return f"Bearer {self._token}"
        return self._basic

    async def refresh(self, stale: Credential) -> bool:
        """After a 401 answered to ``stale``: fetch a fresh credential; True when it differs
        (so a retry may succeed). Concurrent 401s refresh once: the others see the change."""
        async with self._lock:
            now = await self.current()
            if now != stale:
                return True
            if self._exec is not None:
                self._exec.invalidate()
            elif self._token_file is not None:
                self._header(force=True)
            else:
                return False
            return await self.current() != stale
