"""ensure_pki: first-start creation, reuse on later starts, reissue of the serving and admin
certificates when they no longer fit, file modes, and refusal to replace a broken CA."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engenho.pki import (
    ADMIN_GROUPS,
    ADMIN_USER,
    ClusterPKI,
    CorruptPKIError,
    InvalidHostError,
    ensure_pki,
    identity_from_certificate,
)
from engenho.pki.certificates import (
    build_serving_certificate,
    certificate_hosts,
    certificate_pem,
    key_pem,
    load_certificate,
    load_key,
)


def serving_certificate(pki: ClusterPKI) -> x509.Certificate:
    return load_certificate(pki.server_cert_path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_second_call_reuses_everything(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path / "pki", hosts=["node-1", "10.0.0.5"])
    files = {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()}
    second = ensure_pki(tmp_path / "pki", hosts=["node-1", "10.0.0.5"])
    assert second == first
    assert second.admin_token == first.admin_token
    assert {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()} == files


def test_layout_and_modes(pki: ClusterPKI) -> None:
    private = ["ca.key", "server.key", "admin.key", "admin.token"]
    public = ["ca.crt", "server.crt", "admin.crt"]
    for name in private:
        assert mode(pki.directory / name) == 0o600, name
    for name in public:
        assert mode(pki.directory / name) == 0o644, name
    assert mode(pki.directory) == 0o700
    assert not [p for p in pki.directory.iterdir() if p.name.endswith(".tmp")]
    assert pki.ca_pem == pki.ca_cert_path.read_bytes()
    assert pki.admin_token == pki.admin_token_path.read_text().strip()
    assert len(pki.admin_token) >= 43  # 32 random bytes, URL-safe base64


def test_serving_certificate_contents(pki: ClusterPKI) -> None:
    certificate = serving_certificate(pki)
    ca = load_certificate(pki.ca_pem)
    assert certificate.issuer == ca.subject
    assert certificate_hosts(certificate) == {
        "node-1",
        "localhost",
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 365 <= lifetime.days <= 366
    ca_lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert 3650 <= ca_lifetime.days <= 3651
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert pki.serving_hosts == ("localhost", "node-1", "127.0.0.1", "::1")


def test_admin_client_certificate(pki: ClusterPKI) -> None:
    certificate = load_certificate(pki.admin_cert_pem)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert identity_from_certificate(certificate.public_bytes(Encoding.DER)) == (
        ADMIN_USER,
        ADMIN_GROUPS,
    )
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert load_key(pki.admin_key_pem).public_key() == certificate.public_key()


def test_new_host_reissues_the_serving_certificate_with_the_same_ca(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, hosts=["node-1"])
    old = serving_certificate(first)
    second = ensure_pki(tmp_path, hosts=["node-1", "192.168.7.7"])
    new = serving_certificate(second)
    assert new.serial_number != old.serial_number
    assert ipaddress.ip_address("192.168.7.7") in certificate_hosts(new)
    assert second.ca_pem == first.ca_pem
    assert second.admin_token == first.admin_token
    assert second.admin_cert_pem == first.admin_cert_pem


def test_a_subset_of_hosts_keeps_the_certificate(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, hosts=["node-1", "10.1.1.1"])
    second = ensure_pki(tmp_path, hosts=["NODE-1"])  # case-insensitive, and a subset
    assert serving_certificate(second) == serving_certificate(first)


def test_wildcard_listen_addresses_are_not_names(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, hosts=["0.0.0.0", "::", "[fd00::1]"])
    hosts = certificate_hosts(serving_certificate(pki))
    assert ipaddress.ip_address("0.0.0.0") not in hosts
    assert ipaddress.ip_address("::") not in hosts
    assert ipaddress.ip_address("fd00::1") in hosts


@pytest.mark.parametrize("host", ["", "bad host", "under_score", "-leading", "a" * 64 + ".com"])
def test_invalid_hosts_are_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(InvalidHostError):
        ensure_pki(tmp_path, hosts=[host])
    assert not (tmp_path / "ca.crt").exists()


def test_serving_certificate_near_expiry_is_reissued(pki: ClusterPKI) -> None:
    ca = load_certificate(pki.ca_pem)
    ca_key = load_key(pki.ca_key_path.read_bytes())
    hosts = [ipaddress.ip_address("127.0.0.1"), "localhost", ipaddress.ip_address("::1"), "node-1"]
    short, key = build_serving_certificate(ca, ca_key, hosts=hosts, now=datetime.now(UTC), days=29)
    pki.server_cert_path.write_bytes(certificate_pem(short))
    pki.server_key_path.write_bytes(key_pem(key))
    again = ensure_pki(pki.directory, hosts=["node-1"])
    renewed = serving_certificate(again)
    assert renewed.serial_number != short.serial_number
    assert (renewed.not_valid_after_utc - datetime.now(UTC)).days >= 364


def test_serving_certificate_with_a_foreign_key_is_reissued(
    pki: ClusterPKI, tmp_path: Path
) -> None:
    other = ensure_pki(tmp_path / "other", hosts=["node-1"])
    pki.server_key_path.write_bytes(other.server_key_path.read_bytes())
    again = ensure_pki(pki.directory, hosts=["node-1"])
    certificate = serving_certificate(again)
    key = load_key(again.server_key_path.read_bytes())
    assert certificate.public_key() == key.public_key()


def test_certificates_from_another_ca_are_reissued(pki: ClusterPKI, tmp_path: Path) -> None:
    other = ensure_pki(tmp_path / "other", hosts=["node-1"])
    for name in ["server.crt", "server.key", "admin.crt", "admin.key"]:
        (pki.directory / name).write_bytes((other.directory / name).read_bytes())
    again = ensure_pki(pki.directory, hosts=["node-1"])
    ca = load_certificate(again.ca_pem)
    serving_certificate(again).verify_directly_issued_by(ca)
    load_certificate(again.admin_cert_pem).verify_directly_issued_by(ca)


def test_missing_token_is_regenerated_but_kept_otherwise(pki: ClusterPKI) -> None:
    pki.admin_token_path.unlink()
    again = ensure_pki(pki.directory, hosts=["node-1"])
    assert again.admin_token != pki.admin_token
    assert mode(again.admin_token_path) == 0o600
    assert ensure_pki(pki.directory, hosts=["node-1"]).admin_token == again.admin_token


def test_orphan_ca_key_from_an_interrupted_first_start_is_replaced(tmp_path: Path) -> None:
    tmp_path.joinpath("ca.key").write_bytes(b"half-written")
    pki = ensure_pki(tmp_path, hosts=[])
    assert (
        load_certificate(pki.ca_pem).public_key()
        == load_key(pki.ca_key_path.read_bytes()).public_key()
    )


def test_ca_without_its_key_is_corrupt(pki: ClusterPKI) -> None:
    pki.ca_key_path.unlink()
    with pytest.raises(CorruptPKIError, match="its key is missing"):
        ensure_pki(pki.directory, hosts=["node-1"])
    assert pki.ca_cert_path.read_bytes() == pki.ca_pem  # nothing replaced


def test_ca_with_a_foreign_key_is_corrupt(pki: ClusterPKI, tmp_path: Path) -> None:
    other = ensure_pki(tmp_path / "other", hosts=[])
    pki.ca_key_path.write_bytes(other.ca_key_path.read_bytes())
    with pytest.raises(CorruptPKIError, match=r"does not belong to ca\.crt"):
        ensure_pki(pki.directory, hosts=["node-1"])


def test_unreadable_ca_certificate_is_corrupt(pki: ClusterPKI) -> None:
    pki.ca_cert_path.write_bytes(b"not a certificate")
    with pytest.raises(CorruptPKIError, match="not a PEM certificate"):
        ensure_pki(pki.directory, hosts=["node-1"])
