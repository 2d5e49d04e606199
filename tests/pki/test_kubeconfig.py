"""Kubeconfig files: their YAML shape, their mode, and that the official Python client and
real kubectl load them and use them to reach a TLS server serving with the cluster PKI, by
bearer token and by client certificate."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from pathlib import Path

import kubernetes
import pytest
import yaml

from engenho.pki import ClusterPKI, KubeconfigError, build_kubeconfig, write_kubeconfig
from tests.pki.conftest import VERSION, Call, HttpsServer

KUBECTL = "/usr/bin/kubectl"


def kubectl(*args: str) -> str:
    done = subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def token_kubeconfig(pki: ClusterPKI, path: Path, server: str) -> Path:
    write_kubeconfig(path, server=server, ca_pem=pki.ca_pem, user="admin", token=pki.admin_token)
    return path


def certificate_kubeconfig(pki: ClusterPKI, path: Path, server: str) -> Path:
    write_kubeconfig(
        path,
        server=server,
        ca_pem=pki.ca_pem,
        user="admin",
        client_cert_pem=pki.admin_cert_pem,
        client_key_pem=pki.admin_key_pem,
        namespace="kube-system",
    )
    return path


def test_document_shape(pki: ClusterPKI, tmp_path: Path) -> None:
    path = token_kubeconfig(pki, tmp_path / "kubeconfig", "https://127.0.0.1:6443")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "engenho",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(pki.ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": pki.admin_token}}],
        "contexts": [{"name": "engenho", "context": {"cluster": "engenho", "user": "admin"}}],
        "current-context": "engenho",
    }


def test_parent_directories_are_created_and_rewrites_are_atomic(
    pki: ClusterPKI, tmp_path: Path
) -> None:
    path = tmp_path / ".kube" / "configs" / "engenho"
    token_kubeconfig(pki, path, "https://a:1")
    token_kubeconfig(pki, path, "https://b:2")
    assert yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"] == "https://b:2"
    assert [p.name for p in path.parent.iterdir()] == ["engenho"]


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, "no credential"),
        ({"client_cert_pem": b"cert"}, "together"),
        ({"client_key_pem": b"key"}, "together"),
    ],
)
def test_a_user_needs_a_credential(credentials: dict[str, bytes], message: str) -> None:
    with pytest.raises(KubeconfigError, match=message):
        build_kubeconfig(server="https://x", ca_pem=b"ca", user="u", **credentials)


def test_python_client_with_token(
    pki: ClusterPKI, tmp_path: Path, https_server: HttpsServer
) -> None:
    path = token_kubeconfig(pki, tmp_path / "kubeconfig", https_server.url)
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == https_server.url
    assert Path(configuration.ssl_ca_cert).read_bytes() == pki.ca_pem
    with kubernetes.client.ApiClient(configuration) as api:
        version = kubernetes.client.VersionApi(api).get_code()
    assert version.git_version == VERSION["gitVersion"]
    assert https_server.calls == [Call("/version/", f"Bearer {pki.admin_token}", None)]


def test_python_client_with_client_certificate(
    pki: ClusterPKI, tmp_path: Path, https_server: HttpsServer
) -> None:
    path = certificate_kubeconfig(pki, tmp_path / "kubeconfig", https_server.url)
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as api:
        kubernetes.client.VersionApi(api).get_code()
    assert https_server.calls == [Call("/version/", None, ("admin", ("system:masters",)))]


def test_kubectl_config_view(pki: ClusterPKI, tmp_path: Path) -> None:
    path = token_kubeconfig(pki, tmp_path / "kubeconfig", "https://10.9.8.7:6443")
    view = yaml.safe_load(kubectl("config", "view", "--kubeconfig", str(path), "--raw"))
    assert view["clusters"][0]["cluster"]["server"] == "https://10.9.8.7:6443"
    assert view["users"][0]["user"]["token"] == pki.admin_token
    assert view["current-context"] == "engenho"
    minified = kubectl(
        "config",
        "view",
        "--kubeconfig",
        str(path),
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    )
    assert minified == "https://10.9.8.7:6443"


@pytest.mark.parametrize("credential", ["token", "certificate"])
def test_kubectl_reaches_the_server(
    pki: ClusterPKI, tmp_path: Path, https_server: HttpsServer, credential: str
) -> None:
    # kubectl is Go: this checks that crypto/tls accepts the ECDSA chain and presents the
    # admin certificate to a server that only asks for one.
    write = token_kubeconfig if credential == "token" else certificate_kubeconfig
    path = write(pki, tmp_path / "kubeconfig", https_server.url)
    out = json.loads(kubectl("version", "--kubeconfig", str(path), "-o", "json"))
    assert out["serverVersion"]["gitVersion"] == VERSION["gitVersion"]
    call = next(c for c in https_server.calls if c.path.startswith("/version"))
    if credential == "token":
        assert call.authorization == f"Bearer {pki.admin_token}"
        assert call.identity is None
    else:
        assert call.authorization is None
        assert call.identity == ("admin", ("system:masters",))
