"""What a container is given, end to end: its environment (literals, ``$(VAR)``, ConfigMap,
Secret, downward API, resources, ``envFrom``, service variables), command and args, and its
volumes (ConfigMap, Secret, downward API, emptyDir, hostPath, projected) with upstream's
errors when something is missing. The fake runtime records the configs it was given."""

from __future__ import annotations

import base64
from pathlib import Path

from engenho.client import KubeClient

from .conftest import (
    RecordingRuntime,
    StartAgent,
    condition,
    container_state,
    events_of,
    eventually,
    pod_manifest,
)


async def _running(client: KubeClient, namespace: str, name: str) -> dict:
    async def check() -> dict | None:
        pod = await client.get("pods", name, namespace=namespace)
        return pod if (pod.get("status") or {}).get("phase") == "Running" else None

    result: dict = await eventually(check, what=f"{name} Running")
    return result


async def _waiting(client: KubeClient, namespace: str, name: str, reason: str) -> dict:
    async def check() -> dict | None:
        pod = await client.get("pods", name, namespace=namespace)
        waiting = container_state(pod).get("state", {}).get("waiting") or {}
        return waiting if waiting.get("reason") == reason else None

    result: dict = await eventually(check, what=f"{name} waiting with {reason}")
    return result


def _env(runtime: RecordingRuntime, container: str = "app") -> dict[str, str]:
    return {var.name: var.value for var in runtime.config_of(container).env}


async def test_the_environment_is_resolved_as_upstream_does(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"mode": "fast", "level": "3", "1st": "x", "good": "y"},
        },
        namespace=namespace,
    )
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        },
        namespace=namespace,
    )
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "redis-primary"},
            "spec": {"ports": [{"name": "db", "port": 6379, "protocol": "TCP"}]},
        },
        namespace=namespace,
    )
    container = {
        "name": "app",
        "image": "busybox",
        "command": ["run", "$(GREETING)", "$$(GREETING)"],
        "args": ["--level=$(LEVEL)", "$(UNDEFINED)"],
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
        "envFrom": [
            {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
            {"configMapRef": {"name": "settings"}},
        ],
        "env": [
            {"name": "GREETING", "value": "hello"},
            {"name": "PHRASE", "value": "$(GREETING) world $(LATER)"},
            {"name": "LATER", "value": "late"},
            {
                "name": "LEVEL",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}},
            },
            {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {
                "name": "MAYBE",
                "valueFrom": {
                    "configMapKeyRef": {"name": "settings", "key": "no", "optional": True}
                },
            },
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {
                "name": "MEMORY_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "CPU_M",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}},
            },
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    manifest = pod_manifest("env", node.name, containers=[container])
    manifest["metadata"]["labels"] = {"tier": "front"}
    await client.create(manifest, namespace=namespace)
    pod = await _running(client, namespace, "env")
    env = _env(node.runtime)  # type: ignore[arg-type]
    assert env["GREETING"] == "hello"
    assert env["PHRASE"] == "hello world $(LATER)", "only variables defined before expand"
    assert env["LEVEL"] == "3" and env["SECRET"] == "s3cret"
    assert "MAYBE" not in env, "a missing optional key leaves the variable out"
    assert env["CFG_mode"] == "fast" and env["CFG_1st"] == "x" and env["good"] == "y"
    assert "1st" not in env, "not a variable name: skipped"
    assert env["POD"] == "env" and env["NS"] == namespace
    assert env["UID"] == pod["metadata"]["uid"] and env["TIER"] == "front"
    assert env["NODE"] == node.name
    assert env["MY_IP"] == pod["status"]["podIP"] and env["HOST_IP"] == pod["status"]["hostIP"]
    assert env["MEMORY_MI"] == "64" and env["CPU_M"] == "500" and env["CPU"] == "1"
    service = await client.get("services", "redis-primary", namespace=namespace)
    ip = service["spec"]["clusterIP"]
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == ip
    assert env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_DB"] == "6379"
    assert env["REDIS_PRIMARY_PORT"] == f"tcp://{ip}:6379"
    assert env["REDIS_PRIMARY_PORT_6379_TCP_ADDR"] == ip
    assert env["KUBERNETES_SERVICE_HOST"] and env["KUBERNETES_SERVICE_PORT"] == "443"
    config = node.runtime.config_of("app")  # type: ignore[attr-defined]
    assert config.command == ("run", "hello", "$(GREETING)")
    assert config.args == ("--level=3", "$(UNDEFINED)")
    assert config.resources.memory_limit_bytes == 64 * 2**20
    assert config.resources.cpu_limit_millis == 500
    assert pod["status"]["qosClass"] == "Guaranteed", "limits alone: requests default to them"

    async def warned() -> list:
        return [
            e
            for e in await events_of(client, namespace, "env")
            if e["reason"] == "InvalidEnvironmentVariableNames"
        ]

    (event, *_) = await eventually(warned, what="the skipped keys named")
    assert event["message"] == (
        f"Keys [1st] from the EnvFrom configMap {namespace}/settings were skipped "
        "since they are considered invalid environment variable names."
    )


async def test_service_links_off_keeps_only_the_kubernetes_variables(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"ports": [{"port": 5432}]},
        },
        namespace=namespace,
    )
    await client.create(
        pod_manifest("quiet", node.name, enableServiceLinks=False), namespace=namespace
    )
    await _running(client, namespace, "quiet")
    env = _env(node.runtime)  # type: ignore[arg-type]
    assert "DB_SERVICE_HOST" not in env
    assert "KUBERNETES_SERVICE_HOST" in env and "KUBERNETES_PORT_443_TCP" in env


async def test_a_missing_config_map_holds_the_container_until_it_exists(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "k"}}}]
    await client.create(
        pod_manifest(
            "held", node.name, containers=[{"name": "app", "image": "busybox", "env": env}]
        ),
        namespace=namespace,
    )
    waiting = await _waiting(client, namespace, "held", "CreateContainerConfigError")
    assert waiting["message"] == 'configmap "later" not found'
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "later"},
            "data": {"j": "1"},
        },
        namespace=namespace,
    )
    waiting = await _waiting(client, namespace, "held", "CreateContainerConfigError")

    async def missing_key() -> bool:
        pod = await client.get("pods", "held", namespace=namespace)
        message = container_state(pod).get("state", {}).get("waiting", {}).get("message")
        return message == f"couldn't find key k in ConfigMap {namespace}/later"

    await eventually(missing_key, what="the missing key named")
    await client.patch("configmaps", "later", {"data": {"k": "v"}}, namespace=namespace)
    await _running(client, namespace, "held")
    assert _env(node.runtime)["X"] == "v"  # type: ignore[arg-type]
    events = await events_of(client, namespace, "held")
    assert any(e["message"] == 'Error: configmap "later" not found' for e in events)


async def test_config_map_secret_and_downward_volumes_are_written_and_kept_current(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "files"},
            "data": {"app.conf": "v1", "other": "x"},
        },
        namespace=namespace,
    )
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "keys"},
            "data": {"key": base64.b64encode(b"k1").decode()},
        },
        namespace=namespace,
    )
    volumes = [
        {"name": "conf", "configMap": {"name": "files"}},
        {
            "name": "picked",
            "configMap": {
                "name": "files",
                "items": [{"key": "other", "path": "sub/o.txt", "mode": 0o600}],
            },
        },
        {"name": "secret", "secret": {"secretName": "keys", "defaultMode": 0o400}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
        {"name": "scratch", "emptyDir": {}},
    ]
    mounts = [
        {"name": "conf", "mountPath": "/etc/app"},
        {"name": "picked", "mountPath": "/etc/picked"},
        {"name": "secret", "mountPath": "/etc/secret"},
        {"name": "info", "mountPath": "/etc/info"},
        {"name": "scratch", "mountPath": "/work", "subPath": "data"},
        {"name": "conf", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
    ]
    manifest = pod_manifest(
        "vols",
        node.name,
        containers=[{"name": "app", "image": "busybox", "volumeMounts": mounts}],
        volumes=volumes,
    )
    manifest["metadata"]["labels"] = {"app": "vols"}
    await client.create(manifest, namespace=namespace)
    pod = await _running(client, namespace, "vols")
    config = node.runtime.config_of("app")  # type: ignore[attr-defined]
    given = {m.container_path: m for m in config.mounts}
    conf = Path(given["/etc/app"].host_path)
    assert (conf / "app.conf").read_text() == "v1"
    assert (conf / "..data").is_symlink() and (conf / "app.conf").is_symlink()
    assert given["/etc/app"].read_only and given["/etc/secret"].read_only
    assert not given["/work"].read_only and given["/work"].host_path.name == "data"
    assert given["/etc/app.conf"].host_path.read_text() == "v1"
    picked = Path(given["/etc/picked"].host_path) / "sub" / "o.txt"
    assert picked.read_text() == "x" and (picked.stat().st_mode & 0o777) == 0o600
    secret = Path(given["/etc/secret"].host_path) / "key"
    assert secret.read_bytes() == b"k1" and (secret.stat().st_mode & 0o777) == 0o400
    assert (Path(given["/etc/info"].host_path) / "labels").read_text() == 'app="vols"'
    assert pod["metadata"]["uid"] in str(conf)

    await client.patch("configmaps", "files", {"data": {"app.conf": "v2"}}, namespace=namespace)
    await eventually(
        lambda: _read(conf / "app.conf", "v2"), what="the ConfigMap change in the volume"
    )
    await client.patch(
        "pods", "vols", {"metadata": {"labels": {"app": "vols", "x": "1"}}}, namespace=namespace
    )
    await eventually(
        lambda: _read(Path(given["/etc/info"].host_path) / "labels", 'app="vols"\nx="1"'),
        what="the label change in the downward API volume",
    )


async def _read(path: Path, expected: str) -> bool:
    return path.read_text() == expected


async def test_volume_failures_are_failed_mount_events(
    client: KubeClient, namespace: str, start_agent: StartAgent, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    node = await start_agent(host_path_allowlist=(str(allowed),))
    volumes = [
        {"name": "etc", "hostPath": {"path": "/etc"}},
        {"name": "ok", "hostPath": {"path": str(allowed / "made"), "type": "DirectoryOrCreate"}},
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {"name": "cm", "configMap": {"name": "absent"}},
    ]
    # A service account that does not exist: the apiserver refuses its TokenRequest.
    manifest = pod_manifest("mounts", node.name, volumes=volumes, serviceAccountName="nobody")
    await client.create(manifest, namespace=namespace)

    async def failures() -> dict:
        found = {
            e["message"].split('"')[1]: e["message"]
            for e in await events_of(client, namespace, "mounts")
            if e["reason"] == "FailedMount"
        }
        return found if {"etc", "token", "cm"} <= found.keys() else {}

    found = await eventually(failures, what="three FailedMount events")
    assert found["etc"].startswith('MountVolume.SetUp failed for volume "etc" : hostPath /etc is ')
    assert "not under an allowed directory" in found["etc"]
    assert found["cm"] == 'MountVolume.SetUp failed for volume "cm" : configmap "absent" not found'
    assert "failed to fetch token: " in found["token"]
    assert 'serviceaccounts "nobody" not found' in found["token"]
    assert (allowed / "made").is_dir(), "an allowed DirectoryOrCreate is made"

    async def reported() -> dict | None:
        pod = await client.get("pods", "mounts", namespace=namespace)
        return pod if condition(pod, "PodReadyToStartContainers") else None

    pod = await eventually(reported, what="the waiting pod's status")
    assert pod["status"]["phase"] == "Pending"
    assert condition(pod, "PodReadyToStartContainers")["status"] == "False"
    assert container_state(pod)["state"]["waiting"]["reason"] == "ContainerCreating"
