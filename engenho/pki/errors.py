"""Errors raised by :mod:`engenho.pki`.

::

    PKIError                      base of every error in this package
    ├── CorruptPKIError           the CA under pki/ exists but cannot be used; nothing replaced
    ├── InvalidHostError          a serving host is neither an IP address nor a DNS name
    ├── CertificateIdentityError  a client certificate names no user
    ├── KubeconfigError           a kubeconfig user has no usable credential
    └── ServiceAccountTokenError  a bearer token is not a valid service account token of ours

``InvalidHostError``, ``CertificateIdentityError`` and ``KubeconfigError`` are also
``ValueError``: the caller passed a bad value.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CertificateIdentityError",
    "CorruptPKIError",
    "InvalidHostError",
    "KubeconfigError",
    "PKIError",
    "ServiceAccountTokenError",
]


class PKIError(Exception):
    """Base class of every error raised by :mod:`engenho.pki`."""


class CorruptPKIError(PKIError):
    """Raised by ``ensure_pki`` when the cluster CA on disk cannot be used.

    The CA is never regenerated over an existing ``ca.crt``: every kubeconfig and client
    certificate issued so far trusts it, so replacing it silently would lock everyone out.
    An operator repairs or removes the directory by hand.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class InvalidHostError(PKIError, ValueError):
    """Raised when a host for the serving certificate is neither an IP address nor a DNS name."""


class CertificateIdentityError(PKIError, ValueError):
    """Raised by ``identity_from_certificate`` for bytes that are not a DER certificate, or a
    certificate whose subject has no common name (upstream authenticates no one then)."""


class KubeconfigError(PKIError, ValueError):
    """Raised by ``write_kubeconfig`` when the user has neither a token nor a complete client
    certificate and key pair."""


class ServiceAccountTokenError(PKIError):
    """Raised by ``ServiceAccountTokens.verify`` for a token this key did not sign, of another
    issuer, expired or not yet valid, for none of the API's audiences, or with malformed
    claims; the message says which (for logs: clients are only ever told ``Unauthorized``)."""
