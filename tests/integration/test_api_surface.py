"""The API's surroundings against a real server: client-certificate authentication, discovery
(legacy and aggregated), OpenAPI for kubectl, version, health and Prometheus metrics."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from engenho.pki import ensure_pki, issue_client_certificate, write_kubeconfig

from .server import ServerProcess, kubectl

pytestmark = pytest.mark.slow


def _cert_kubeconfig(server: ServerProcess, tmp_path: Path, user: str, groups: list[str]) -> Path:
    pki = ensure_pki(server.data_dir / "pki", hosts=["127.0.0.1", "localhost", "test-node"])
    cert, key = issue_client_certificate(pki, user=user, groups=groups)
    path = tmp_path / f"{user}.kubeconfig"
    write_kubeconfig(
        path,
        server=server.url,
        ca_pem=pki.ca_pem,
        user=user,
        client_cert_pem=cert,
        client_key_pem=key,
    )
    return path


def test_client_certificate_authenticates(server: ServerProcess, tmp_path: Path) -> None:
    config = _cert_kubeconfig(server, tmp_path, "admin", ["system:masters"])
    out = kubectl(server, "--kubeconfig", str(config), "get", "namespace", "default", "-o", "name")
    assert out.stdout.strip() == "namespace/default"
    created = kubectl(server, "--kubeconfig", str(config), "create", "configmap", "by-cert")
    assert "configmap/by-cert created" in created.stdout


def test_a_foreign_certificate_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    foreign = ensure_pki(tmp_path / "other-pki", hosts=["127.0.0.1"])
    cert, key = issue_client_certificate(foreign, user="admin", groups=["system:masters"])
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(
            server.url + "/api/v1/namespaces", context=context, timeout=10
        ).read()


def test_discovery(server: ServerProcess) -> None:
    resources = kubectl(server, "api-resources", "--no-headers").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in resources}
    assert rows["pods"][1] == "po" and rows["deployments"][1] == "deploy"
    assert "apps/v1" in rows["deployments"] and "true" in rows["deployments"]
    status, body, headers = server.request(
        "GET",
        "/apis",
        accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    )
    assert status == 200 and isinstance(body, dict) and body["kind"] == "APIGroupDiscoveryList"
    assert "as=APIGroupDiscoveryList" in headers["content-type"]
    status, legacy, headers = server.request("GET", "/apis")
    assert isinstance(legacy, dict) and legacy["kind"] == "APIGroupList"
    assert headers["content-type"] == "application/json"
    assert kubectl(server, "get", "deploy", "-A").returncode == 0


def test_openapi_serves_kubectl_explain(server: ServerProcess) -> None:
    explained = kubectl(server, "explain", "pod.spec.containers.image").stdout
    assert "FIELD: image" in explained or "FIELD:    image" in explained
    status, index, _ = server.request("GET", "/openapi/v3")
    assert status == 200 and isinstance(index, dict)
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    status, document, headers = server.request("GET", url)
    assert status == 200 and isinstance(document, dict) and "immutable" in headers["cache-control"]
    assert "io.k8s.api.apps.v1.Deployment" in document["components"]["schemas"]
    status, swagger, _ = server.request("GET", "/openapi/v2")
    assert status == 200 and isinstance(swagger, dict) and swagger["swagger"] == "2.0"


def test_version_and_health(server: ServerProcess) -> None:
    version = json.loads(kubectl(server, "version", "-o", "json").stdout)["serverVersion"]
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    status, text, _ = server.request("GET", "/readyz?verbose", token=None, accept="*/*")
    assert status == 200 and isinstance(text, str)
    assert "[+]projections ok" in text and "[+]log ok" in text


def test_metrics(server: ServerProcess) -> None:
    kubectl(server, "get", "namespaces")
    status, text, headers = server.request("GET", "/metrics", accept="*/*")
    assert (
        status == 200 and isinstance(text, str) and headers["content-type"].startswith("text/plain")
    )
    for name in (
        'apiserver_request_total{code="200",group="",resource="namespaces",subresource="",verb="list"}',
        "apiserver_request_duration_seconds_bucket",
        "engenho_log_fsync_batch_entries_bucket",
        "engenho_log_append_batch_seconds_bucket",
        "engenho_projections_applied_index",
        "engenho_log_commit_index",
    ):
        assert name in text, name
