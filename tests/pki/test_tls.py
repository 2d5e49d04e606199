"""Real TLS handshakes against the serving context: server verification by name and address,
optional client certificates whose identity the server reads from the handshake, and the
refusal of a certificate signed by another CA."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from engenho.pki import (
    ADMIN_GROUPS,
    ADMIN_USER,
    CertificateIdentityError,
    ClusterPKI,
    ensure_pki,
    identity_from_certificate,
    issue_client_certificate,
)
from engenho.pki.certificates import generate_key

Identity = tuple[str, tuple[str, ...]]


@attrs.frozen
class EchoServer:
    """Answers each connection with one line naming the client's certificate identity."""

    port: int
    identities: list[Identity | None]


@pytest.fixture
async def echo_server(pki: ClusterPKI) -> AsyncIterator[EchoServer]:
    identities: list[Identity | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        identity = identity_from_certificate(der) if der else None
        identities.append(identity)
        writer.write(f"{identity}\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=pki.server_ssl_context())
    try:
        yield EchoServer(server.sockets[0].getsockname()[1], identities)
    finally:
        server.close()
        await server.wait_closed()


def client_context(
    pki: ClusterPKI, tmp_path: Path, certificate: tuple[bytes, bytes] | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca_cert_path)
    if certificate is not None:
        cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
        cert_file.write_bytes(certificate[0])
        key_file.write_bytes(certificate[1])
        context.load_cert_chain(cert_file, key_file)
    return context


async def exchange(port: int, context: ssl.SSLContext, server_hostname: str) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_hostname
    )
    try:
        return await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
        # The server may already have torn the connection down.
        with suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("server_hostname", ["127.0.0.1", "localhost", "node-1"])
async def test_handshake_without_client_certificate(
    pki: ClusterPKI, tmp_path: Path, echo_server: EchoServer, server_hostname: str
) -> None:
    line = await exchange(echo_server.port, client_context(pki, tmp_path), server_hostname)
    assert line == b"None\n"
    assert echo_server.identities == [None]


async def test_server_sees_the_admin_certificate(
    pki: ClusterPKI, tmp_path: Path, echo_server: EchoServer
) -> None:
    context = client_context(pki, tmp_path, (pki.admin_cert_pem, pki.admin_key_pem))
    await exchange(echo_server.port, context, "localhost")
    assert echo_server.identities == [(ADMIN_USER, ADMIN_GROUPS)]


async def test_server_sees_an_issued_identity(
    pki: ClusterPKI, tmp_path: Path, echo_server: EchoServer
) -> None:
    issued = issue_client_certificate(pki, user="system:node:node-1", groups=["system:nodes"])
    await exchange(echo_server.port, client_context(pki, tmp_path, issued), "127.0.0.1")
    assert echo_server.identities == [("system:node:node-1", ("system:nodes",))]


async def test_certificate_from_another_ca_is_refused(
    pki: ClusterPKI, tmp_path: Path, echo_server: EchoServer
) -> None:
    stranger = ensure_pki(tmp_path / "stranger", hosts=[])
    forged = issue_client_certificate(stranger, user="admin", groups=["system:masters"])
    context = client_context(pki, tmp_path, forged)
    # Under TLS 1.3 the client finishes its side before the server checks the certificate,
    # so the refusal may surface on the first read rather than in the handshake.
    try:
        line = await exchange(echo_server.port, context, "localhost")
    except (ssl.SSLError, ConnectionError):
        line = b""
    assert line == b""
    assert echo_server.identities == []


async def test_unknown_name_is_refused_by_the_client(
    pki: ClusterPKI, tmp_path: Path, echo_server: EchoServer
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        await exchange(echo_server.port, client_context(pki, tmp_path), "example.com")


async def test_client_trusting_another_ca_refuses_the_server(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    stranger = ensure_pki(tmp_path / "stranger", hosts=[])
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await exchange(echo_server.port, client_context(stranger, tmp_path), "localhost")


def test_identity_takes_every_organization_as_a_group(pki: ClusterPKI) -> None:
    cert_pem, _ = issue_client_certificate(pki, user="jane", groups=["dev", "ops", "dev"])
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    assert identity_from_certificate(der) == ("jane", ("dev", "ops", "dev"))
    cert_pem, _ = issue_client_certificate(pki, user="bot", groups=[])
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    assert identity_from_certificate(der) == ("bot", ())


def test_identity_of_garbage_or_nameless_certificates() -> None:
    with pytest.raises(CertificateIdentityError, match="not a DER certificate"):
        identity_from_certificate(b"\x30\x03\x02\x01\x01")
    # A subject of only organizations authenticates no one (upstream returns no user).
    key = generate_key()
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")])
    nameless = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateIdentityError, match="no common name"):
        identity_from_certificate(nameless.public_bytes(Encoding.DER))


@pytest.mark.parametrize("user", ["", "u" * 65])
def test_user_names_that_cannot_be_a_common_name_are_refused(pki: ClusterPKI, user: str) -> None:
    with pytest.raises(ValueError, match="user name"):
        issue_client_certificate(pki, user=user, groups=["g"])
