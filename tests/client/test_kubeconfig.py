"""Kubeconfig loading without a server: which files are read, how several merge (first
definition of a name wins, first current-context wins), relative paths, ``*-data`` fields,
exec plugin settings, in-cluster configuration, and the errors for broken files."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from engenho.client import (
    ConfigError,
    ExecConfig,
    from_kubeconfig,
    in_cluster_config,
    load_config,
    load_kubeconfig,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def cluster(name: str, server: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **extra}}


def user(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "user": fields}


def context(name: str, cluster_name: str, user_name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "context": {"cluster": cluster_name, "user": user_name, **extra}}


def document(**sections: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", **sections}


def test_first_file_wins_for_each_name_and_for_current_context(tmp_path: Path) -> None:
    first = write(
        tmp_path / "a" / "config",
        document(
            clusters=[cluster("shared", "https://first:6443")],
            users=[user("alice", token="from-first")],
            contexts=[context("one", "shared", "alice", namespace="ns1")],
        ),
    )
    second = write(
        tmp_path / "b" / "config",
        document(
            clusters=[cluster("shared", "https://second:6443"), cluster("extra", "https://x")],
            users=[user("alice", token="from-second"), user("bob", token="bob")],
            contexts=[context("two", "extra", "bob")],
            **{"current-context": "two"},
        ),
    )
    third = write(tmp_path / "c" / "config", document(**{"current-context": "one"}))
    missing = tmp_path / "nowhere" / "config"
    env = {"KUBECONFIG": os.pathsep.join([str(first), "", str(missing), str(second), str(third)])}
    merged = load_kubeconfig(environ=env)
    assert merged.sources == (first, second, third)
    assert merged.clusters["shared"].server == "https://first:6443"
    assert merged.users["alice"].token == "from-first"
    assert set(merged.clusters) == {"shared", "extra"} and set(merged.users) == {"alice", "bob"}
    # The first file setting current-context is the second one: the third's is ignored.
    assert merged.current_context == "two"
    config = load_config(environ=env)
    assert (config.server, config.token, config.namespace) == ("https://x", "bob", "default")
    chosen = load_config(environ=env, context="one", namespace="override")
    assert (chosen.server, chosen.token, chosen.namespace) == (
        "https://first:6443",
        "from-first",
        "override",
    )


def test_duplicate_kubeconfig_entries_are_read_once(tmp_path: Path) -> None:
    only = write(tmp_path / "config", document(clusters=[cluster("c", "https://c")]))
    merged = load_kubeconfig(environ={"KUBECONFIG": os.pathsep.join([str(only), str(only)])})
    assert merged.sources == (only,)


def test_home_config_is_the_default(tmp_path: Path) -> None:
    write(
        tmp_path / ".kube" / "config",
        document(
            clusters=[cluster("c", "https://home:6443")],
            users=[user("u", token="t")],
            contexts=[context("ctx", "c", "u", namespace="team")],
            **{"current-context": "ctx"},
        ),
    )
    config = load_config(environ={"HOME": str(tmp_path)})
    assert (config.server, config.namespace, config.context) == ("https://home:6443", "team", "ctx")


def test_relative_paths_resolve_against_their_file(tmp_path: Path) -> None:
    directory = tmp_path / "conf"
    (directory / "certs").mkdir(parents=True)
    (directory / "certs" / "ca.pem").write_bytes(b"CA PEM")
    (directory / "certs" / "client.pem").write_bytes(b"CERT PEM")
    (directory / "certs" / "client.key").write_bytes(b"KEY PEM")
    path = write(
        directory / "config",
        document(
            clusters=[cluster("c", "https://c:6443/", **{"certificate-authority": "certs/ca.pem"})],
            users=[
                user(
                    "u",
                    tokenFile="token",
                    **{"client-certificate": "certs/client.pem", "client-key": "certs/client.key"},
                    exec={
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "./bin/plugin",
                        "interactiveMode": "Never",
                    },
                ),
                user(
                    "on-path",
                    exec={
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                    },
                ),
            ],
            contexts=[context("ctx", "c", "u")],
            **{"current-context": "ctx"},
        ),
    )
    loaded = load_kubeconfig(path)
    entry = loaded.users["u"]
    assert entry.token_file == directory / "token"
    assert entry.exec is not None and entry.exec.command == str(directory / "bin" / "plugin")
    on_path = loaded.users["on-path"].exec
    assert on_path is not None and on_path.command == "kubelogin"
    assert on_path.interactive_mode == "IfAvailable"  # the v1beta1 default
    config = from_kubeconfig(loaded)
    assert config.server == "https://c:6443"
    assert config.tls.ca_pem == b"CA PEM"
    assert config.certificate is not None and config.certificate.key_pem == b"KEY PEM"


def test_data_fields_are_decoded_and_win_over_files(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        document(
            clusters=[
                cluster(
                    "c",
                    "https://c",
                    **{
                        "certificate-authority-data": b64(b"inline CA"),
                        "certificate-authority": "missing.pem",
                        "insecure-skip-tls-verify": False,
                        "tls-server-name": "api.internal",
                        "proxy-url": "http://proxy:3128",
                    },
                )
            ],
            users=[
                user(
                    "u",
                    **{
                        "client-certificate-data": b64(b"cert"),
                        "client-key-data": b64(b"key"),
                    },
                )
            ],
            contexts=[context("ctx", "c", "u")],
            **{"current-context": "ctx"},
        ),
    )
    config = load_config(path)
    assert config.tls.ca_pem == b"inline CA"
    assert config.tls.server_name == "api.internal" and not config.tls.insecure
    assert config.proxy_url == "http://proxy:3128"
    assert config.certificate is not None
    assert (config.certificate.certificate_pem, config.certificate.key_pem) == (b"cert", b"key")
    assert config.cluster_info() == {
        "server": "https://c",
        "tls-server-name": "api.internal",
        "certificate-authority-data": b64(b"inline CA"),
        "proxy-url": "http://proxy:3128",
    }


def test_exec_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        document(
            users=[
                user(
                    "u",
                    exec={
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "/usr/bin/get-token",
                        "args": ["--cluster", "prod"],
                        "env": [{"name": "REGION", "value": "eu"}],
                        "interactiveMode": "Always",
                        "provideClusterInfo": True,
                        "installHint": "install get-token",
                    },
                )
            ]
        ),
    )
    assert load_kubeconfig(path).users["u"].exec == ExecConfig(
        api_version="client.authentication.k8s.io/v1",
        command="/usr/bin/get-token",
        args=("--cluster", "prod"),
        env=(("REGION", "eu"),),
        interactive_mode="Always",
        provide_cluster_info=True,
        install_hint="install get-token",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("clusters: [", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("clusters: [{name: c, cluster: {}}]", "has no server"),
        ("clusters: [{cluster: {server: x}}]", "has no name"),
        (
            "users: [{name: u, user: {client-key-data: '***'}}]",
            "client-key-data is not valid base64",
        ),
        (
            "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1,"
            " command: x}}}]",
            "is not supported",
        ),
        (
            "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1,"
            " command: x}}}]",
            "interactiveMode must be specified",
        ),
        (
            "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1,"
            " command: x, interactiveMode: Sometimes}}}]",
            "must be one of",
        ),
    ],
)
def test_malformed_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        load_kubeconfig(path)
    assert str(path) in str(raised.value)


def test_selection_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "absent")
    empty = load_kubeconfig(environ={"KUBECONFIG": str(tmp_path / "absent")})
    assert not empty.contexts and empty.current_context is None
    with pytest.raises(ConfigError, match="no current-context"):
        from_kubeconfig(empty)
    path = write(
        tmp_path / "config",
        document(
            clusters=[cluster("c", "https://c")],
            users=[user("legacy", **{"auth-provider": {"name": "gcp"}})],
            contexts=[
                context("no-cluster", "ghost", ""),
                context("no-user", "c", "ghost"),
                context("legacy", "c", "legacy"),
                context("anonymous", "c", ""),
            ],
        ),
    )
    loaded = load_kubeconfig(path)
    with pytest.raises(ConfigError, match='context "other" does not exist'):
        from_kubeconfig(loaded, context="other")
    with pytest.raises(ConfigError, match='cluster "ghost"'):
        from_kubeconfig(loaded, context="no-cluster")
    with pytest.raises(ConfigError, match='user "ghost"'):
        from_kubeconfig(loaded, context="no-user")
    with pytest.raises(ConfigError, match='auth-provider plugin "gcp"'):
        from_kubeconfig(loaded, context="legacy")
    anonymous = from_kubeconfig(loaded, context="anonymous")
    assert anonymous.credentials().anonymous


def test_in_cluster(tmp_path: Path) -> None:
    root = tmp_path / "serviceaccount"
    root.mkdir()
    (root / "token").write_text("sa-token\n")
    (root / "ca.crt").write_bytes(b"SA CA")
    (root / "namespace").write_text("kube-system")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    config = in_cluster_config(root=root, environ=env)
    assert config.server == "https://[fd00::1]:443"
    assert (config.token_file, config.tls.ca_pem, config.namespace) == (
        root / "token",
        b"SA CA",
        "kube-system",
    )
    # No kubeconfig anywhere: load_config falls back to the pod's service account.
    fallback = load_config(
        environ={**env, "HOME": str(tmp_path / "home")}, service_account_dir=root
    )
    assert fallback.server == config.server and fallback.namespace == "kube-system"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        in_cluster_config(root=root, environ={})
    (root / "token").unlink()
    with pytest.raises(ConfigError, match="no token"):
        in_cluster_config(root=root, environ=env)
