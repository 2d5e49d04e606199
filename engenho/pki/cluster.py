"""The cluster's PKI directory: the CA, the apiserver's serving certificate and the admin's
credentials, created on first start and reused afterwards.

Layout of ``DATA_DIR/pki/`` (keys and the token are mode 0600, certificates 0644)::

    ca.crt  ca.key          the cluster CA (10 years); never replaced once it exists
    server.crt  server.key  the serving certificate (1 year), reissued when its SANs no
                            longer cover the hosts asked for or it expires within 30 days
    admin.crt  admin.key    the admin's client certificate: CN=admin, O=system:masters
    admin.token             the admin's bearer token
"""

from __future__ import annotations

import fcntl
import ipaddress
import secrets
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from attrs import field, frozen
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from engenho.pki.certificates import (
    LEAF_VALIDITY_DAYS,
    Host,
    build_ca,
    build_client_certificate,
    build_serving_certificate,
    certificate_hosts,
    certificate_pem,
    is_issued_by,
    key_matches,
    key_pem,
    load_certificate,
    load_key,
    needs_renewal,
    parse_host,
)
from engenho.pki.errors import CertificateIdentityError, CorruptPKIError
from engenho.pki.files import PRIVATE_MODE, PUBLIC_MODE, write_atomically
from engenho.pki.identity import identity_from_certificate

__all__ = [
    "ADMIN_GROUPS",
    "ADMIN_USER",
    "DEFAULT_HOSTS",
    "ClusterPKI",
    "ensure_pki",
    "issue_client_certificate",
]

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Always in the serving certificate, so that local clients verify the server by name."""

_CA_CERT, _CA_KEY = "ca.crt", "ca.key"
_SERVER_CERT, _SERVER_KEY = "server.crt", "server.key"
_ADMIN_CERT, _ADMIN_KEY, _ADMIN_TOKEN = "admin.crt", "admin.key", "admin.token"
_LOCK = ".lock"


@frozen
class ClusterPKI:
    """What the apiserver and the admin kubeconfig need from the PKI directory."""

    directory: Path
    ca_pem: bytes = field(repr=False)
    admin_token: str = field(repr=False)
    admin_cert_pem: bytes = field(repr=False)
    admin_key_pem: bytes = field(repr=False)
    serving_hosts: tuple[str, ...]
    """The serving certificate's SANs, DNS names first, as text."""

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / _CA_CERT

    @property
    def ca_key_path(self) -> Path:
        return self.directory / _CA_KEY

    @property
    def server_cert_path(self) -> Path:
        return self.directory / _SERVER_CERT

    @property
    def server_key_path(self) -> Path:
        return self.directory / _SERVER_KEY

    @property
    def admin_token_path(self) -> Path:
        return self.directory / _ADMIN_TOKEN

    def server_ssl_context(self) -> ssl.SSLContext:
        """A TLS server context that asks for a client certificate but does not require one.

        A certificate that is offered must chain to the cluster CA or the handshake fails;
        clients without one (bearer tokens, anonymous) still connect.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        context.load_verify_locations(cadata=self.ca_pem.decode("ascii"))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context


def ensure_pki(directory: Path, *, hosts: Sequence[str]) -> ClusterPKI:
    """Create the PKI under ``directory`` on first call; reuse it on later calls.

    ``hosts`` are the names and addresses clients use to reach the server (the listen
    address, the node name); :data:`DEFAULT_HOSTS` are always added and wildcard addresses
    (``0.0.0.0``, ``::``) dropped, since no client connects to them. The serving and admin
    certificates are reissued by the same CA when they no longer fit; the CA and the token
    are never replaced. Raises :class:`CorruptPKIError` when ``ca.crt`` exists but the CA
    cannot be used, and :class:`InvalidHostError` for a malformed host.
    """
    wanted = _serving_hosts(hosts)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.now(UTC)
    with _locked(directory):
        ca_certificate, ca_key = _ensure_ca(directory, now=now)
        serving = _ensure_serving(directory, ca_certificate, ca_key, hosts=wanted, now=now)
        admin_cert, admin_key = _ensure_admin(directory, ca_certificate, ca_key, now=now)
        token = _ensure_token(directory / _ADMIN_TOKEN)
    return ClusterPKI(
        directory=directory,
        ca_pem=certificate_pem(ca_certificate),
        admin_token=token,
        admin_cert_pem=admin_cert,
        admin_key_pem=admin_key,
        serving_hosts=_host_texts(certificate_hosts(serving)),
    )


def issue_client_certificate(
    pki: ClusterPKI, *, user: str, groups: Sequence[str], days: int = LEAF_VALIDITY_DAYS
) -> tuple[bytes, bytes]:
    """``(certificate PEM, key PEM)`` for ``user`` in ``groups``, signed by the cluster CA."""
    if not user:
        raise ValueError("a client certificate needs a user name (its common name)")
    ca_certificate = load_certificate(pki.ca_cert_path.read_bytes())
    ca_key = load_key(pki.ca_key_path.read_bytes())
    certificate, key = build_client_certificate(
        ca_certificate, ca_key, user=user, groups=groups, now=datetime.now(UTC), days=days
    )
    return certificate_pem(certificate), key_pem(key)


def _serving_hosts(hosts: Sequence[str]) -> tuple[Host, ...]:
    wanted: list[Host] = []
    for text in (*hosts, *DEFAULT_HOSTS):
        host = parse_host(text)
        if isinstance(host, ipaddress.IPv4Address | ipaddress.IPv6Address) and host.is_unspecified:
            continue
        if host not in wanted:
            wanted.append(host)
    return tuple(wanted)


def _host_texts(hosts: frozenset[Host]) -> tuple[str, ...]:
    names = sorted(host for host in hosts if isinstance(host, str))
    addresses = sorted(
        (host for host in hosts if not isinstance(host, str)),
        key=lambda address: (address.version, int(address)),
    )
    return (*names, *(str(address) for address in addresses))


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two processes starting on one data directory must not each mint a CA: the last rename
    # would win per file and leave a certificate beside another CA's key.
    with (directory / _LOCK).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _ensure_ca(
    directory: Path, *, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / _CA_CERT, directory / _CA_KEY
    if not cert_path.exists():
        # The key is written before the certificate, so a crash in between leaves only an
        # orphan key: nothing was ever signed with it, and it is simply replaced.
        certificate, key = build_ca(now=now)
        write_atomically(key_path, key_pem(key), mode=PRIVATE_MODE)
        write_atomically(cert_path, certificate_pem(certificate), mode=PUBLIC_MODE)
        return certificate, key
    try:
        certificate = load_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise CorruptPKIError(cert_path, f"not a PEM certificate: {exc}") from exc
    try:
        key = load_key(key_path.read_bytes())
    except FileNotFoundError as exc:
        raise CorruptPKIError(key_path, "the CA certificate exists but its key is missing") from exc
    except ValueError as exc:
        raise CorruptPKIError(key_path, f"not a usable PEM private key: {exc}") from exc
    if not key_matches(certificate, key):
        raise CorruptPKIError(key_path, "the key does not belong to ca.crt")
    if certificate.not_valid_after_utc <= now:
        raise CorruptPKIError(
            cert_path, f"the cluster CA expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
        )
    return certificate, key


def _ensure_serving(
    directory: Path,
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    hosts: tuple[Host, ...],
    now: datetime,
) -> x509.Certificate:
    cert_path, key_path = directory / _SERVER_CERT, directory / _SERVER_KEY
    current = _load_leaf(cert_path, key_path, ca_certificate, now=now)
    if current is not None and set(hosts) <= certificate_hosts(current):
        return current
    certificate, key = build_serving_certificate(ca_certificate, ca_key, hosts=hosts, now=now)
    write_atomically(key_path, key_pem(key), mode=PRIVATE_MODE)
    write_atomically(cert_path, certificate_pem(certificate), mode=PUBLIC_MODE)
    return certificate


def _ensure_admin(
    directory: Path,
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    now: datetime,
) -> tuple[bytes, bytes]:
    cert_path, key_path = directory / _ADMIN_CERT, directory / _ADMIN_KEY
    current = _load_leaf(cert_path, key_path, ca_certificate, now=now)
    if current is not None and _is_admin(current):
        return cert_path.read_bytes(), key_path.read_bytes()
    certificate, key = build_client_certificate(
        ca_certificate, ca_key, user=ADMIN_USER, groups=ADMIN_GROUPS, now=now
    )
    cert, private = certificate_pem(certificate), key_pem(key)
    write_atomically(key_path, private, mode=PRIVATE_MODE)
    write_atomically(cert_path, cert, mode=PUBLIC_MODE)
    return cert, private


def _load_leaf(
    cert_path: Path, key_path: Path, ca_certificate: x509.Certificate, *, now: datetime
) -> x509.Certificate | None:
    """The stored certificate if it is still good to serve: parseable, paired with its key,
    signed by the current CA and not about to expire; otherwise ``None`` (reissue it)."""
    try:
        certificate = load_certificate(cert_path.read_bytes())
        key = load_key(key_path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    if not key_matches(certificate, key) or not is_issued_by(certificate, ca_certificate):
        return None
    if needs_renewal(certificate, now=now):
        return None
    return certificate


def _is_admin(certificate: x509.Certificate) -> bool:
    try:
        user, groups = identity_from_certificate(certificate.public_bytes(Encoding.DER))
    except CertificateIdentityError:
        return False
    return user == ADMIN_USER and groups == ADMIN_GROUPS


def _ensure_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    token = secrets.token_urlsafe(32)
    write_atomically(path, token.encode("ascii") + b"\n", mode=PRIVATE_MODE)
    return token
