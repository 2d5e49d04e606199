"""Building and inspecting the cluster's X.509 certificates (cryptography's x509 builder).

Keys are ECDSA P-256: generated in microseconds, and accepted by Go's crypto/tls (kubectl,
client-go) and by OpenSSL (Python's ssl, the official Python client). The extensions follow
what kubeadm issues, so that strict verifiers (OpenSSL's X509_STRICT, which newer Pythons
enable by default) accept the chain: a critical basicConstraints, keyUsage on every
certificate, subject and authority key identifiers.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engenho.pki.errors import InvalidHostError

__all__ = [
    "CA_VALIDITY",
    "LEAF_VALIDITY_DAYS",
    "RENEW_BEFORE",
    "SERVING_COMMON_NAME",
    "Host",
    "build_ca",
    "build_client_certificate",
    "build_serving_certificate",
    "certificate_hosts",
    "certificate_pem",
    "generate_key",
    "is_issued_by",
    "key_matches",
    "key_pem",
    "load_certificate",
    "load_key",
    "needs_renewal",
    "parse_host",
]

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY_DAYS = 365
RENEW_BEFORE = timedelta(days=30)
SERVING_COMMON_NAME = "engenho-apiserver"

# Certificates start a little in the past so that a peer whose clock is slightly behind
# does not reject a certificate issued a moment ago (kubeadm backdates by the same amount).
_BACKDATE = timedelta(minutes=5)

_COMMON_NAME_MAX = 64

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"  # RFC 1123: at most 63 characters
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")

Host = ipaddress.IPv4Address | ipaddress.IPv6Address | str
"""A subject alternative name: an IP address, or a lower-case DNS name."""


def parse_host(text: str) -> Host:
    """An IP address (``[::1]`` brackets allowed) or a DNS name, lower-cased."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    name = candidate.lower().rstrip(".")
    if len(name) > 253 or not _DNS_NAME.fullmatch(name):
        raise InvalidHostError(f"{text!r} is neither an IP address nor a DNS name")
    return name


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, which Go's tls.X509KeyPair and OpenSSL both load."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes) -> x509.Certificate:
    """The first certificate of a PEM file; ``ValueError`` if there is none."""
    return x509.load_pem_x509_certificate(pem)


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM private key; ``ValueError`` unless it is an elliptic-curve key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        # A ValueError like every other unusable key file: the bytes, not the caller, are wrong.
        raise ValueError(  # noqa: TRY004
            f"expected an elliptic-curve private key, found {type(key).__name__}"
        )
    return key


def build_ca(*, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed cluster CA, valid for :data:`CA_VALIDITY`.

    The subject carries the creation time (as k3s does) and a random tag, so that two
    clusters' CAs never share a name: verifiers that look issuers up by name would otherwise
    confuse them.
    """
    key = generate_key()
    common_name = f"engenho-ca@{int(now.timestamp())}-{secrets.token_hex(4)}"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        # The CA signs only leaf certificates: no intermediate can be minted from it.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def build_serving_certificate(
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    hosts: Sequence[Host],
    now: datetime,
    days: int = LEAF_VALIDITY_DAYS,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate (serverAuth) for ``hosts``, signed by the CA."""
    names: list[x509.GeneralName] = [
        x509.DNSName(host) if isinstance(host, str) else x509.IPAddress(host) for host in hosts
    ]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVING_COMMON_NAME)])
    return _build_leaf(
        ca_certificate,
        ca_key,
        subject=subject,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        alternative_names=names,
        now=now,
        days=days,
    )


def build_client_certificate(
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    user: str,
    groups: Iterable[str],
    now: datetime,
    days: int = LEAF_VALIDITY_DAYS,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS client certificate (clientAuth): CN is the user name, each O a group, as the
    upstream x509 authenticator reads them."""
    if not 0 < len(user.encode()) <= _COMMON_NAME_MAX:
        raise ValueError(
            f"a user name must have 1 to {_COMMON_NAME_MAX} bytes to be a certificate's "
            f"common name (X.509 ub-common-name), not {len(user.encode())}"
        )
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    return _build_leaf(
        ca_certificate,
        ca_key,
        subject=x509.Name(attributes),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        alternative_names=[],
        now=now,
        days=days,
    )


def certificate_hosts(certificate: x509.Certificate) -> frozenset[Host]:
    """The DNS names (lower-cased) and IP addresses a certificate's SAN extension lists."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    dns: set[Host] = {name.lower() for name in names.get_values_for_type(x509.DNSName)}
    addresses = names.get_values_for_type(x509.IPAddress)
    return frozenset(
        dns
        | {
            address
            for address in addresses
            if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
        }
    )


def needs_renewal(certificate: x509.Certificate, *, now: datetime) -> bool:
    """True when the certificate expires within :data:`RENEW_BEFORE` (or already has)."""
    return certificate.not_valid_after_utc - now < RENEW_BEFORE


def is_issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key signed ``certificate`` (the signature is checked)."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    """True when ``key`` is the private half of the certificate's public key."""
    encoding, form = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(encoding, form) == key.public_key().public_bytes(
        encoding, form
    )


def _build_leaf(
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    alternative_names: list[x509.GeneralName],
    now: datetime,
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = generate_key()
    ca_key_id = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificate_signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
    )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _key_usage(*, certificate_signing: bool) -> x509.KeyUsage:
    # ECDSA keys sign; they never encipher keys, so keyEncipherment stays off.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_signing,
        crl_sign=certificate_signing,
        encipher_only=False,
        decipher_only=False,
    )
