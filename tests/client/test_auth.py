"""Authentication and TLS against a real engenho server: bearer tokens (inline, and from a
file that is rotated under a running client), client certificates signed by the cluster CA,
exec credential plugins (v1 and v1beta1: caching until expiry, refresh on 401, certificates,
failures), anonymous access refused, server verification (CA, insecure, tls-server-name),
in-cluster configuration, and kubeconfig files merged through ``$KUBECONFIG``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from engenho.client import (
    CertificatePair,
    ClientConfig,
    ExecConfig,
    ExecPluginError,
    KubeClient,
    RetryPolicy,
    TLSConfig,
    TransportError,
    UnauthorizedError,
    in_cluster_config,
    load_config,
)
from engenho.pki import ensure_pki, issue_client_certificate
from tests.integration.server import ServerProcess

HOSTS = ["127.0.0.1", "localhost", "test-node"]

PLUGIN = """\
import json, os, pathlib, sys, datetime

state = pathlib.Path(os.environ["PLUGIN_STATE"])
runs = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(runs))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
pathlib.Path(str(state) + ".info").write_text(json.dumps(info))
mode = sys.argv[1]
if mode == "fail":
    print("plugin exploded", file=sys.stderr)
    sys.exit(3)
status = {}
if mode == "token":
    status["token"] = os.environ["PLUGIN_TOKEN"]
elif mode == "wrong-first":
    status["token"] = "wrong" if runs == 1 else os.environ["PLUGIN_TOKEN"]
elif mode == "cert":
    status["clientCertificateData"] = pathlib.Path(os.environ["PLUGIN_CERT"]).read_text()
    status["clientKeyData"] = pathlib.Path(os.environ["PLUGIN_KEY"]).read_text()
ttl = float(os.environ.get("PLUGIN_TTL", "0"))
if ttl:
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl)
    status["expirationTimestamp"] = expiry.isoformat()
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


def ca_pem(server: ServerProcess) -> bytes:
    return (server.data_dir / "pki" / "ca.crt").read_bytes()


def anonymous_config(server: ServerProcess) -> ClientConfig:
    return ClientConfig(server=server.url, tls=TLSConfig(ca_pem=ca_pem(server)))


async def can_list(config: ClientConfig) -> bool:
    async with KubeClient(config) as client:
        await client.list("namespaces", limit=1).collect()
    return True


def write_plugin(tmp_path: Path) -> Path:
    script = tmp_path / "plugin.py"
    script.write_text(f"#!{sys.executable}\n{PLUGIN}")
    script.chmod(0o755)
    return script


def plugin_config(
    server: ServerProcess,
    tmp_path: Path,
    mode: str,
    *,
    api_version: str = "client.authentication.k8s.io/v1",
    ttl: float = 0,
    **env: str,
) -> ClientConfig:
    exec_config = ExecConfig(
        api_version=api_version,
        command=str(write_plugin(tmp_path)),
        args=(mode,),
        env=tuple(
            {
                "PLUGIN_STATE": str(tmp_path / "runs"),
                "PLUGIN_TOKEN": server.admin_token,
                "PLUGIN_TTL": str(ttl),
                **env,
            }.items()
        ),
        interactive_mode="Never",
        provide_cluster_info=True,
        install_hint="pip install the-plugin",
    )
    return attrs.evolve(anonymous_config(server), exec=exec_config)


def plugin_runs(tmp_path: Path) -> int:
    state = tmp_path / "runs"
    return int(state.read_text()) if state.exists() else 0


# ---------------------------------------------------------------------- tokens


async def test_bearer_token_and_anonymous(server: ServerProcess) -> None:
    assert await can_list(attrs.evolve(anonymous_config(server), token=server.admin_token))
    async with KubeClient(anonymous_config(server)) as anonymous:
        assert (await anonymous.version())["major"] == "1"  # public
        with pytest.raises(UnauthorizedError) as refused:
            await anonymous.list("namespaces").collect()
    assert refused.value.code == 401 and refused.value.reason == "Unauthorized"
    with pytest.raises(UnauthorizedError):
        await can_list(attrs.evolve(anonymous_config(server), token="not-a-token"))


async def test_token_file_is_reread_when_it_changes(server: ServerProcess, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale-token\n")
    config = attrs.evolve(anonymous_config(server), token_file=token_file, token="ignored")
    async with KubeClient(config) as client:
        with pytest.raises(UnauthorizedError):
            await client.get("namespaces", "default")
        token_file.write_text(server.admin_token + "\n")  # rotated in place
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "default"
        replacement = tmp_path / "token.new"
        replacement.write_text("revoked")
        replacement.replace(token_file)  # rotated by rename, as kubelet does
        with pytest.raises(UnauthorizedError):
            await client.get("namespaces", "default")
        replacement.write_text(server.admin_token)
        replacement.replace(token_file)
        await client.get("namespaces", "default")


# ---------------------------------------------------------------------- certificates


async def test_client_certificate_signed_by_the_cluster_ca(
    server: ServerProcess, tmp_path: Path
) -> None:
    pki = ensure_pki(server.data_dir / "pki", hosts=HOSTS)
    cert, key = issue_client_certificate(pki, user="alice", groups=["system:masters"])
    config = attrs.evolve(anonymous_config(server), certificate=CertificatePair(cert, key))
    assert await can_list(config)
    # The same from a kubeconfig naming the files relative to itself.
    (tmp_path / "alice.crt").write_bytes(cert)
    (tmp_path / "alice.key").write_bytes(key)
    (tmp_path / "ca.crt").write_bytes(ca_pem(server))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "e",
                        "cluster": {"server": server.url, "certificate-authority": "ca.crt"},
                    }
                ],
                "users": [
                    {
                        "name": "alice",
                        "user": {"client-certificate": "alice.crt", "client-key": "alice.key"},
                    }
                ],
                "contexts": [{"name": "e", "context": {"cluster": "e", "user": "alice"}}],
                "current-context": "e",
            }
        )
    )
    assert await can_list(load_config(kubeconfig))


async def test_a_certificate_from_another_ca_is_refused(
    server: ServerProcess, tmp_path: Path
) -> None:
    foreign = ensure_pki(tmp_path / "foreign", hosts=HOSTS)
    cert, key = issue_client_certificate(foreign, user="admin", groups=["system:masters"])
    config = attrs.evolve(anonymous_config(server), certificate=CertificatePair(cert, key))
    # Under TLS 1.3 the server refuses the certificate after the client's side of the
    # handshake is done: the client sees a disconnection, which it retries like any other.
    async with KubeClient(config, retry=RetryPolicy(attempts=2, initial=0.01)) as client:
        with pytest.raises(TransportError, match="disconnected"):
            await client.get("namespaces", "default")


# ---------------------------------------------------------------------- verifying the server


async def test_server_verification(server: ServerProcess, tmp_path: Path) -> None:
    started = time.monotonic()
    token = server.admin_token
    foreign_ca = ensure_pki(tmp_path / "foreign", hosts=HOSTS).ca_pem
    untrusted = ClientConfig(server=server.url, tls=TLSConfig(ca_pem=foreign_ca), token=token)
    with pytest.raises(TransportError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        await can_list(untrusted)
    system_store = ClientConfig(server=server.url, token=token)
    with pytest.raises(TransportError):
        await can_list(system_store)
    assert await can_list(attrs.evolve(untrusted, tls=TLSConfig(insecure=True)))
    # The serving certificate names the node: verify that name while dialling 127.0.0.1.
    named = TLSConfig(ca_pem=ca_pem(server), server_name="test-node")
    assert await can_list(attrs.evolve(untrusted, tls=named))
    misnamed = TLSConfig(ca_pem=ca_pem(server), server_name="elsewhere.example")
    with pytest.raises(TransportError):
        await can_list(attrs.evolve(untrusted, tls=misnamed))
    assert time.monotonic() - started < 2, "a failed verification is not retried"


# ---------------------------------------------------------------------- exec plugins


def exec_info(tmp_path: Path) -> Any:
    return json.loads((tmp_path / "runs.info").read_text())


async def test_exec_plugin_credential_is_cached(server: ServerProcess, tmp_path: Path) -> None:
    config = plugin_config(server, tmp_path, "token", ttl=3600)
    async with KubeClient(config) as client:
        await asyncio.gather(*(client.get("namespaces", "default") for _ in range(8)))
        for _ in range(5):
            await client.list("namespaces").collect()
    assert plugin_runs(tmp_path) == 1
    info = exec_info(tmp_path)
    assert info["apiVersion"] == "client.authentication.k8s.io/v1"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == server.url
    assert "certificate-authority-data" in info["spec"]["cluster"]


async def test_exec_plugin_runs_again_when_the_credential_expires(
    server: ServerProcess, tmp_path: Path
) -> None:
    config = plugin_config(server, tmp_path, "token", ttl=0.6)
    async with KubeClient(config) as client:
        await client.get("namespaces", "default")
        await client.get("namespaces", "default")
        assert plugin_runs(tmp_path) == 1
        await asyncio.sleep(0.7)
        await client.get("namespaces", "default")
        assert plugin_runs(tmp_path) == 2


async def test_exec_plugin_is_asked_again_after_a_401(
    server: ServerProcess, tmp_path: Path
) -> None:
    async with KubeClient(plugin_config(server, tmp_path, "wrong-first")) as client:
        await client.get("namespaces", "default")
    assert plugin_runs(tmp_path) == 2


async def test_exec_plugin_that_keeps_failing_auth_gives_up_after_one_refresh(
    server: ServerProcess, tmp_path: Path
) -> None:
    config = plugin_config(server, tmp_path, "token", PLUGIN_TOKEN="always-wrong")
    async with KubeClient(config) as client:
        with pytest.raises(UnauthorizedError):
            await client.get("namespaces", "default")
    assert plugin_runs(tmp_path) == 2


async def test_exec_plugin_v1beta1_certificates_rotate(
    server: ServerProcess, tmp_path: Path
) -> None:
    pki = ensure_pki(server.data_dir / "pki", hosts=HOSTS)

    def issue(user: str) -> None:
        cert, key = issue_client_certificate(pki, user=user, groups=["system:masters"])
        (tmp_path / "client.crt").write_bytes(cert)
        (tmp_path / "client.key").write_bytes(key)

    issue("bob")
    config = plugin_config(
        server,
        tmp_path,
        "cert",
        api_version="client.authentication.k8s.io/v1beta1",
        ttl=0.3,
        PLUGIN_CERT=str(tmp_path / "client.crt"),
        PLUGIN_KEY=str(tmp_path / "client.key"),
    )
    async with KubeClient(config) as client:
        for run, user in enumerate(("bob", "carol", "dave"), start=1):
            if run > 1:
                issue(user)
                await asyncio.sleep(0.35)  # the previous certificate expired
            await client.get("namespaces", "default")
            assert plugin_runs(tmp_path) == run
    assert exec_info(tmp_path)["apiVersion"] == "client.authentication.k8s.io/v1beta1"


async def test_exec_plugin_failures(server: ServerProcess, tmp_path: Path) -> None:
    with pytest.raises(ExecPluginError, match="exit code 3"):
        await can_list(plugin_config(server, tmp_path, "fail"))
    missing = plugin_config(server, tmp_path, "token")
    assert missing.exec is not None
    missing = attrs.evolve(
        missing, exec=attrs.evolve(missing.exec, command=str(tmp_path / "absent"))
    )
    with pytest.raises(ExecPluginError, match="pip install the-plugin"):
        await can_list(missing)
    always = plugin_config(server, tmp_path, "token")
    assert always.exec is not None
    always = attrs.evolve(always, exec=attrs.evolve(always.exec, interactive_mode="Always"))
    with pytest.raises(ExecPluginError, match="not a terminal"):
        await can_list(always)
    mismatched = plugin_config(server, tmp_path, "token")
    assert mismatched.exec is not None
    script = tmp_path / "liar.py"
    script.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': "
        "'client.authentication.k8s.io/v1beta1', 'kind': 'ExecCredential', "
        "'status': {'token': 'x'}}))\n"
    )
    script.chmod(0o755)
    mismatched = attrs.evolve(mismatched, exec=attrs.evolve(mismatched.exec, command=str(script)))
    with pytest.raises(ExecPluginError, match="plugin returned version"):
        await can_list(mismatched)


# ---------------------------------------------------------------------- where configs come from


async def test_in_cluster_service_account(server: ServerProcess, tmp_path: Path) -> None:
    root = tmp_path / "serviceaccount"
    root.mkdir()
    (root / "token").write_text(server.admin_token)
    (root / "ca.crt").write_bytes(ca_pem(server))
    (root / "namespace").write_text("kube-system")
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    config = in_cluster_config(root=root, environ=env)
    async with KubeClient(config) as client:
        assert client.namespace == "kube-system"
        assert (await client.get("namespaces", "kube-system"))["metadata"]["name"] == "kube-system"


async def test_kubeconfig_files_merged_from_the_environment(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = yaml.safe_load(server.kubeconfig.read_text())
    users = tmp_path / "users.yaml"
    users.write_text(
        yaml.safe_dump(
            {
                "users": admin["users"],
                "contexts": [
                    {
                        "name": "merged",
                        "context": {"cluster": "engenho", "user": "admin", "namespace": "m"},
                    }
                ],
                "current-context": "merged",
            }
        )
    )
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        yaml.safe_dump({"clusters": admin["clusters"], "current-context": "ignored"})
    )
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(users), str(clusters)]))
    async with KubeClient.from_kubeconfig() as client:
        assert client.config.context == "merged" and client.namespace == "m"
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "default"
