"""Service account tokens end to end, against a real ``engenho server``: ``kubectl create
token`` prints a token that kubectl and the official client authenticate with; a deleted
service account's token is refused; TokenRequest refusals carry upstream's codes and messages
and, like successes, leave the log alone; a legacy token Secret is filled in and its token
works; tokens survive a restart (the signing key is kept); and a pod with a projected
serviceAccountToken volume runs on the embedded (fake) node with its token mounted."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from .server import QUIET_CONTROLLERS, ServerProcess, kubectl

pytestmark = pytest.mark.slow

TOKEN = "/api/v1/namespaces/default/serviceaccounts/{}/token"
# Only the controllers these tests need: the ServiceAccount controller (the `default`
# account) and the token controller; nothing else writes, so the log head holds still.
QUIET = {k: v for k, v in QUIET_CONTROLLERS.items() if "SERVICEACCOUNT" not in k}


def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what or check} (last: {last!r})")


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return value


def _exists(server: ServerProcess, path: str) -> Callable[[], bool]:
    return lambda: server.request("GET", path)[0] == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("tokens"), env=QUIET).start()
    try:
        eventually(
            _exists(process, "/api/v1/namespaces/default/serviceaccounts/default"),
            what="the default service account",
        )
        yield process
    finally:
        if process.process is not None:
            process.stop()


def _client(server: ServerProcess, token: str) -> k8s.CoreV1Api:
    config = k8s.Configuration()
    config.host = server.url
    config.ssl_ca_cert = str(server.data_dir / "pki" / "ca.crt")
    config.api_key = {"authorization": f"Bearer {token}"}
    return k8s.CoreV1Api(k8s.ApiClient(config))


def test_the_signing_key_is_in_the_pki_directory(server: ServerProcess) -> None:
    pki = server.data_dir / "pki"
    assert (pki / "sa.key").stat().st_mode & 0o777 == 0o600
    assert (pki / "sa.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_kubectl_create_token_authenticates_as_the_account(server: ServerProcess) -> None:
    token = kubectl(server, "create", "token", "default", "--duration=10m").stdout.strip()
    claims = _claims(token)
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["exp"] - claims["iat"] == 600
    listed = kubectl(server, "get", "configmaps", "-n", "default", "--token", token, "-o", "name")
    assert "configmap/kube-root-ca.crt" in listed.stdout
    names = [
        cm.metadata.name
        for cm in _client(server, token).list_namespaced_config_map("default").items
    ]
    assert "kube-root-ca.crt" in names


def test_a_deleted_accounts_token_is_refused(server: ServerProcess) -> None:
    kubectl(server, "create", "serviceaccount", "robot")
    token = kubectl(server, "create", "token", "robot").stdout.strip()
    kubectl(server, "delete", "serviceaccount", "robot")
    status, body, _ = server.request("GET", "/api/v1/namespaces/default/configmaps", token=token)
    assert status == 401 and isinstance(body, dict) and body["reason"] == "Unauthorized"
    refused = kubectl(server, "get", "configmaps", "--token", token, check=False)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr
    with pytest.raises(k8s.ApiException) as caught:
        _client(server, token).list_namespaced_config_map("default")
    assert caught.value.status == 401


def _request(server: ServerProcess, account: str, spec: dict[str, Any]) -> tuple[int, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    status, answer, _ = server.request("POST", TOKEN.format(account), json.dumps(body).encode())
    return status, answer


def test_token_requests_leave_the_log_alone(server: ServerProcess) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }
    kubectl(server, "apply", "-f", "-", input=json.dumps(pod))
    before = server.log_head()

    status, answer = _request(server, "default", {"expirationSeconds": 60})
    assert status == 422 and answer["reason"] == "Invalid"
    assert answer["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    assert "may not specify a duration less than 10 minutes" in answer["message"]

    status, answer = _request(server, "nobody", {})
    assert (status, answer["reason"]) == (404, "NotFound")
    assert answer["message"] == 'serviceaccounts "nobody" not found'

    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "stale-uid"}
    status, answer = _request(server, "default", {"boundObjectRef": ref})
    assert (status, answer["reason"]) == (409, "Conflict")
    assert answer["message"] == (
        'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference '
        "(stale-uid) does not match the UID in record. The object might have been deleted and "
        "then recreated"
    )

    short = kubectl(server, "create", "token", "default", "--duration=1m", check=False)
    assert short.returncode != 0
    assert "spec.expirationSeconds: Invalid value: 60" in short.stderr

    status, answer = _request(server, "default", {})
    assert status == 201 and answer["status"]["token"]
    assert server.log_head() == before, "TokenRequests append nothing to the log"


def test_a_legacy_token_secret_is_filled_in_and_works(server: ServerProcess) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "default-token",
            "annotations": {"kubernetes.io/service-account.name": "default"},
        },
    }
    kubectl(server, "apply", "-f", "-", input=json.dumps(secret))

    def token() -> str:
        found = kubectl(server, "get", "secret", "default-token", "-o", "json").stdout
        data = json.loads(found).get("data") or {}
        return base64.b64decode(data["token"]).decode() if data.get("token") else ""

    legacy = eventually(token, what="the token controller fills the Secret in")
    assert _claims(legacy)["iss"] == "kubernetes/serviceaccount"
    names = [
        cm.metadata.name
        for cm in _client(server, legacy).list_namespaced_config_map("default").items
    ]
    assert "kube-root-ca.crt" in names


def test_tokens_survive_a_restart(server: ServerProcess) -> None:
    token = kubectl(server, "create", "token", "default").stdout.strip()
    key = (server.data_dir / "pki" / "sa.key").read_bytes()
    server.stop()
    server.start()
    assert (server.data_dir / "pki" / "sa.key").read_bytes() == key
    status, _, _ = server.request("GET", "/api/v1/namespaces/default/configmaps", token=token)
    assert status == 200


# ---------------------------------------------------------------------- on the embedded node


@pytest.fixture
def node_server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", "--runtime", "fake").start()
    try:
        kubectl(process, "wait", "node/test-node", "--for=condition=Ready", "--timeout=60s")
        eventually(_exists(process, "/api/v1/namespaces/default/serviceaccounts/default"))
        yield process
    finally:
        process.stop()


def test_a_projected_token_volume_is_mounted(node_server: ServerProcess) -> None:
    # The volume upstream's ServiceAccount admission adds to every pod (kube-api-access-*).
    volume = {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ]
        },
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "volumeMounts": [
                        {
                            "name": "kube-api-access",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [volume],
        },
    }
    kubectl(node_server, "apply", "-f", "-", input=json.dumps(pod))
    kubectl(node_server, "wait", "pod/reader", "--for=condition=Ready", "--timeout=60s")
    found = json.loads(kubectl(node_server, "get", "pod", "reader", "-o", "json").stdout)
    assert found["status"]["phase"] == "Running"
    events = json.loads(
        kubectl(
            node_server,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=reader",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert not [e for e in events if e["reason"] == "FailedMount"], events

    (token_file,) = node_server.data_dir.glob("**/kubernetes.io~projected/kube-api-access/token")
    token = token_file.read_text()
    claims = _claims(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "reader", "uid": found["metadata"]["uid"]}
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607
    assert (token_file.parent / "namespace").read_text() == "default"
    status, _, _ = node_server.request("GET", "/api/v1/namespaces/default/pods", token=token)
    assert status == 200
