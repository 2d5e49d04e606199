"""Continue tokens for paged lists: opaque to clients, tamper-evident to us.

A token names the snapshot index the first page was read at and the last key returned; later
pages are read at that same index, so the pages form one consistent snapshot. The token is
authenticated with a keyed BLAKE3 MAC: a forged or altered token is refused (400), never
followed to a wrong page. An *inconsistent* token (index 0) continues at the current state;
it is what a 410 for an expired token hands back, as upstream does.
"""

from __future__ import annotations

import base64
import binascii
import hmac

import orjson
from attrs import frozen
from blake3 import blake3

from engenho.registry.errors import BadRequestError

__all__ = ["ContinueToken", "TokenCodec"]

_MAC_BYTES = 16


@frozen
class ContinueToken:
    index: int
    """The snapshot index; 0 for an inconsistent continuation at the current state."""
    namespace: str
    name: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCodec:
    """Encodes and checks continue tokens with a per-cluster key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the continue-token key must be 32 bytes")
        self._key = key

    def _mac(self, body: bytes) -> bytes:
        return blake3(body, key=self._key).digest(length=_MAC_BYTES)

    def encode(self, token: ContinueToken) -> str:
        body = orjson.dumps({"v": 1, "rv": token.index, "ns": token.namespace, "n": token.name})
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, text: str) -> ContinueToken:
        try:
            body_text, mac_text = text.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error) as exc:
            raise BadRequestError(f"continue key is not valid: {text!r} is malformed") from exc
        if not hmac.compare_digest(mac, self._mac(body)):
            raise BadRequestError("continue key is not valid: it was not issued by this server")
        data = orjson.loads(body)
        return ContinueToken(index=data["rv"], namespace=data["ns"], name=data["n"])
