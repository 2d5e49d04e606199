"""kubectl end to end against a real engenho server: namespaces, configmaps and secrets through
create/get/describe/delete, multi-document apply, watches, output formats, label/annotate,
optimistic concurrency on replace, selector deletes and invalid names."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from .server import KUBECTL, ServerProcess, kubectl, own, yaml_documents

pytestmark = pytest.mark.slow

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels:
    app: shop
    tier: backend
data:
  color: blue
  size: large
---
apiVersion: v1
kind: Secret
metadata:
  name: credentials
  namespace: shop
  labels:
    app: shop
stringData:
  password: hunter2
"""


def test_system_namespaces_exist(server: ServerProcess) -> None:
    out = kubectl(server, "get", "namespaces", "-o", "name").stdout.split()
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{name}" in out


def test_namespace_lifecycle(server: ServerProcess) -> None:
    assert "namespace/team-a created" in kubectl(server, "create", "namespace", "team-a").stdout
    table = kubectl(server, "get", "namespace", "team-a").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE"]
    assert table[1].split()[:2] == ["team-a", "Active"]
    described = kubectl(server, "describe", "namespace", "team-a").stdout
    assert "Name:" in described and "team-a" in described and "Active" in described
    obj = json.loads(kubectl(server, "get", "ns", "team-a", "-o", "json").stdout)
    assert obj["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"
    assert obj["spec"]["finalizers"] == ["kubernetes"]


def test_configmap_create_get_describe_delete(server: ServerProcess) -> None:
    created = kubectl(
        server,
        "create",
        "configmap",
        "app-config",
        "--from-literal=mode=fast",
        "--from-literal=level=3",
    )
    assert "configmap/app-config created" in created.stdout
    rows = kubectl(server, "get", "configmaps").stdout.splitlines()
    assert rows[0].split() == ["NAME", "DATA", "AGE"]
    assert any(r.split()[:2] == ["app-config", "2"] for r in rows[1:])
    assert (
        kubectl(server, "get", "cm", "app-config", "-o", "jsonpath={.data.mode}").stdout == "fast"
    )
    described = kubectl(server, "describe", "configmap", "app-config").stdout
    assert "mode" in described and "fast" in described
    assert 'configmap "app-config" deleted' in kubectl(server, "delete", "cm", "app-config").stdout
    missing = kubectl(server, "get", "cm", "app-config", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): configmaps "app-config" not found' in missing.stderr


def test_secret_create_and_read(server: ServerProcess) -> None:
    kubectl(server, "create", "secret", "generic", "token", "--from-literal=key=s3cret")
    rows = kubectl(server, "get", "secret", "token").stdout.splitlines()
    assert rows[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert rows[1].split()[:3] == ["token", "Opaque", "1"]
    data = kubectl(server, "get", "secret", "token", "-o", "jsonpath={.data.key}").stdout
    assert data == "czNjcmV0"


def test_apply_multi_document_yaml(server: ServerProcess) -> None:
    result = kubectl(server, "apply", "-f", "-", input=MANIFEST)
    assert "namespace/shop created" in result.stdout
    assert "configmap/settings created" in result.stdout
    assert "secret/credentials created" in result.stdout
    again = kubectl(server, "apply", "-f", "-", input=MANIFEST)
    assert "configmap/settings unchanged" in again.stdout
    docs = yaml_documents(
        kubectl(server, "get", "cm", "settings", "-n", "shop", "-o", "yaml").stdout
    )
    assert docs[0]["data"] == {"color": "blue", "size": "large"}
    secret = json.loads(
        kubectl(server, "get", "secret", "credentials", "-n", "shop", "-o", "json").stdout
    )
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    assert "stringData" not in secret


def test_output_formats(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "formats")
    kubectl(server, "create", "configmap", "one", "-n", "formats", "--from-literal=a=1")
    as_yaml = yaml_documents(
        kubectl(server, "get", "cm", "one", "-n", "formats", "-o", "yaml").stdout
    )
    assert as_yaml[0]["kind"] == "ConfigMap" and as_yaml[0]["data"] == {"a": "1"}
    as_json = json.loads(kubectl(server, "get", "cm", "-n", "formats", "-o", "json").stdout)
    assert as_json["kind"] == "List" and own([i["metadata"]["name"] for i in as_json["items"]]) == [
        "one"
    ]
    name = kubectl(server, "get", "cm", "one", "-n", "formats", "-o", "jsonpath={.metadata.name}")
    assert name.stdout == "one"
    wide = kubectl(server, "get", "ns", "formats", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:3] == ["NAME", "STATUS", "AGE"]
    uid = as_yaml[0]["metadata"]["uid"]
    assert len(uid) == 36 and as_yaml[0]["metadata"]["resourceVersion"].isdigit()


def test_label_and_annotate(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "labels")
    kubectl(server, "create", "configmap", "tagged", "-n", "labels")
    assert "labeled" in kubectl(server, "label", "cm", "tagged", "-n", "labels", "env=prod").stdout
    assert (
        "annotated"
        in kubectl(server, "annotate", "cm", "tagged", "-n", "labels", "owner=platform-team").stdout
    )
    obj = json.loads(kubectl(server, "get", "cm", "tagged", "-n", "labels", "-o", "json").stdout)
    assert obj["metadata"]["labels"] == {"env": "prod"}
    assert obj["metadata"]["annotations"] == {"owner": "platform-team"}
    kubectl(server, "label", "cm", "tagged", "-n", "labels", "env-")
    obj = json.loads(kubectl(server, "get", "cm", "tagged", "-n", "labels", "-o", "json").stdout)
    assert "env" not in (obj["metadata"].get("labels") or {})
    shown = kubectl(server, "get", "cm", "-n", "labels", "--show-labels").stdout.splitlines()
    assert shown[0].split()[-1] == "LABELS"


def test_replace_with_stale_resource_version_conflicts(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "occ")
    kubectl(server, "create", "configmap", "counter", "-n", "occ", "--from-literal=n=1")
    stale = json.loads(kubectl(server, "get", "cm", "counter", "-n", "occ", "-o", "json").stdout)
    fresh = dict(stale, data={"n": "2"})
    kubectl(server, "replace", "-f", "-", input=json.dumps(fresh))
    before = server.log_head()
    stale["data"] = {"n": "3"}
    result = kubectl(server, "replace", "-f", "-", input=json.dumps(stale), check=False)
    assert result.returncode == 1
    assert "Error from server (Conflict)" in result.stderr
    assert (
        "the object has been modified; please apply your changes to the latest version"
        in result.stderr
    )
    assert server.log_head() == before, "a refused write must not reach the log"
    value = kubectl(server, "get", "cm", "counter", "-n", "occ", "-o", "jsonpath={.data.n}").stdout
    assert value == "2"


def test_delete_by_label(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "sweep")
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        kubectl(server, "create", "configmap", name, "-n", "sweep")
        kubectl(server, "label", "cm", name, "-n", "sweep", f"tier={tier}")
    out = kubectl(server, "delete", "cm", "-n", "sweep", "-l", "tier=web").stdout
    assert 'configmap "a" deleted' in out and 'configmap "b" deleted' in out
    left = kubectl(server, "get", "cm", "-n", "sweep", "-o", "name").stdout.split()
    assert own(left) == ["configmap/c"]
    selected = kubectl(server, "get", "cm", "-n", "sweep", "-l", "tier notin (web)", "-o", "name")
    assert own(selected.stdout.split()) == ["configmap/c"]


@pytest.mark.parametrize("name", ["Bad_Name", "-leading-dash", "x" * 254])
def test_invalid_names_are_rejected(server: ServerProcess, name: str) -> None:
    before = server.log_head()
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    result = kubectl(server, "create", "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    # kubectl prints a 422 Invalid Status as `The <Kind> "<name>" is invalid: <causes>`.
    assert f'The ConfigMap "{name}" is invalid' in result.stderr
    assert "metadata.name: Invalid value" in result.stderr
    assert server.log_head() == before


def test_get_watch_streams_changes(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "watched")
    watcher = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(server.kubeconfig),
            "--cache-dir",
            str(server.data_dir / "kubectl-cache"),
            "get",
            "cm",
            "-n",
            "watched",
            "-w",
            "--request-timeout=20s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        kubectl(server, "create", "configmap", "live-1", "-n", "watched", "--from-literal=a=b")
        kubectl(server, "create", "configmap", "live-2", "-n", "watched")
        deadline = time.monotonic() + 20
        seen = ""
        assert watcher.stdout is not None
        while time.monotonic() < deadline and not ("live-1" in seen and "live-2" in seen):
            seen += watcher.stdout.readline()
        assert "live-1" in seen and "live-2" in seen, seen
    finally:
        watcher.kill()
        watcher.communicate()
