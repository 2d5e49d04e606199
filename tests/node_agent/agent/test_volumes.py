"""Volumes without a cluster: upstream's payload rules (items, modes, optional, wording),
the atomic writer's ``..data`` swap, hostPath's allow-list and type checks, and the mounts
containers get (subPath, subPathExpr, read-only API volumes)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from engenho.node_agent.atomic import AtomicWriter, FileProjection, PayloadError
from engenho.node_agent.environment import PodFacts
from engenho.node_agent.volumes import PodVolumes, VolumeError, referenced_objects

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "1"}},
    "spec": {"containers": [{"name": "app", "resources": {"limits": {"memory": "32Mi"}}}]},
}


async def _no_token(account: str, audience: str | None, expiration: int) -> str:
    raise VolumeError("failed to fetch token: the server does not serve tokens")


async def _setup(
    tmp_path: Path,
    volumes: list[dict[str, Any]],
    *,
    config_maps: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    allow: tuple[str, ...] = (),
) -> tuple[PodVolumes, list[tuple[str, str]]]:
    pod = {**POD, "spec": {**POD["spec"], "volumes": volumes}}
    target = PodVolumes(tmp_path / "pod", allow)
    failures, _notices = await target.setup(
        pod,
        PodFacts(pod),
        config_maps=config_maps or {},
        secrets=secrets or {},
        fetch_token=_no_token,
    )
    return target, failures


def test_the_atomic_writer_swaps_versions(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "v")
    assert writer.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o600)})
    first = os.readlink(tmp_path / "v" / "..data")
    assert (tmp_path / "v" / "a").read_text() == "1"
    assert os.readlink(tmp_path / "v" / "dir") == "..data/dir"
    assert ((tmp_path / "v" / "dir" / "b").stat().st_mode & 0o777) == 0o600
    assert not writer.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o600)})
    assert writer.write({"a": FileProjection(b"changed")})
    second = os.readlink(tmp_path / "v" / "..data")
    assert second != first and not (tmp_path / "v" / first).exists()
    assert not (tmp_path / "v" / "dir").exists(), "paths no longer in the payload go"
    assert (tmp_path / "v" / "a").read_text() == "changed"
    for bad in ("/abs", "../up", "..hidden", "a/../b", ""):
        with pytest.raises(PayloadError):
            writer.write({bad: FileProjection(b"x")})


async def test_config_map_payloads(tmp_path: Path) -> None:
    cm = {
        "data": {"a": "1", "b": "2"},
        "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()},
    }
    volumes = [
        {"name": "all", "configMap": {"name": "cm", "defaultMode": 0o640}},
        {
            "name": "some",
            "configMap": {"name": "cm", "items": [{"key": "b", "path": "x/b.txt", "mode": 0o400}]},
        },
        {"name": "missing-key", "configMap": {"name": "cm", "items": [{"key": "zz", "path": "z"}]}},
        {
            "name": "optional-key",
            "configMap": {"name": "cm", "optional": True, "items": [{"key": "zz", "path": "z"}]},
        },
        {"name": "absent", "configMap": {"name": "gone"}},
        {"name": "absent-ok", "configMap": {"name": "gone", "optional": True}},
    ]
    target, failures = await _setup(tmp_path, volumes, config_maps={"cm": cm, "gone": None})
    assert dict(failures) == {
        "missing-key": "configmap references non-existent config key: zz",
        "absent": 'configmap "gone" not found',
    }
    every = target.paths["all"]
    assert (every / "a").read_text() == "1" and (every / "bin").read_bytes() == b"\x00\x01"
    assert ((every / "a").stat().st_mode & 0o777) == 0o640
    some = target.paths["some"] / "x" / "b.txt"
    assert some.read_text() == "2" and (some.stat().st_mode & 0o777) == 0o400
    assert not list(target.paths["absent-ok"].glob("[!.]*")), "an optional absent map: empty"
    assert "kubernetes.io~configmap" in str(every)


async def test_secret_and_downward_payloads(tmp_path: Path) -> None:
    secret = {"data": {"k": base64.b64encode(b"v").decode()}}
    volumes = [
        {"name": "s", "secret": {"secretName": "s"}},
        {"name": "s-key", "secret": {"secretName": "s", "items": [{"key": "nope", "path": "n"}]}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {
                        "path": "mem",
                        "resourceFieldRef": {
                            "containerName": "app",
                            "resource": "limits.memory",
                            "divisor": "1Mi",
                        },
                    },
                ]
            },
        },
        {
            "name": "bad-info",
            "downwardAPI": {"items": [{"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}}]},
        },
    ]
    target, failures = await _setup(tmp_path, volumes, secrets={"s": secret})
    assert dict(failures) == {
        "s-key": "references non-existent secret key: nope",
        "bad-info": "unsupported fieldPath: spec.nodeName",
    }
    assert (target.paths["s"] / "k").read_bytes() == b"v"
    info = target.paths["info"]
    assert (info / "labels").read_text() == 'a="1"'
    assert (info / "name").read_text() == "p" and (info / "mem").read_text() == "32"


async def test_projected_sources_merge_and_a_missing_token_fails(tmp_path: Path) -> None:
    volume = {
        "name": "all",
        "projected": {
            "sources": [
                {"configMap": {"name": "cm"}},
                {
                    "downwardAPI": {
                        "items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                    }
                },
            ]
        },
    }
    target, failures = await _setup(tmp_path, [volume], config_maps={"cm": {"data": {"a": "1"}}})
    assert not failures
    assert (target.paths["all"] / "a").read_text() == "1"
    assert (target.paths["all"] / "ns").read_text() == "ns"
    token = {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
    _target, failures = await _setup(tmp_path, [token])
    assert failures == [("t", "failed to fetch token: the server does not serve tokens")]


async def test_host_paths_are_allow_listed(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "dir").mkdir(parents=True)
    (allowed / "file").write_text("x")
    (allowed / "escape").symlink_to("/etc")
    volumes = [
        {"name": "dir", "hostPath": {"path": str(allowed / "dir"), "type": "Directory"}},
        {"name": "made", "hostPath": {"path": str(allowed / "new"), "type": "DirectoryOrCreate"}},
        {"name": "file", "hostPath": {"path": str(allowed / "newfile"), "type": "FileOrCreate"}},
        {"name": "wrong", "hostPath": {"path": str(allowed / "file"), "type": "Directory"}},
        {"name": "etc", "hostPath": {"path": "/etc"}},
        {"name": "escape", "hostPath": {"path": str(allowed / "escape")}},
    ]
    target, failures = await _setup(tmp_path, volumes, allow=(str(allowed),))
    found = dict(failures)
    assert found["wrong"] == f"hostPath type check failed: {allowed / 'file'} is not a directory"
    assert found["etc"].startswith("hostPath /etc is not under an allowed directory")
    assert found["escape"].startswith(f"hostPath {allowed / 'escape'} is not under")
    assert target.paths["made"].is_dir() and target.paths["file"].is_file()
    assert set(found) == {"wrong", "etc", "escape"}


async def test_unsupported_volume_types_are_named(tmp_path: Path) -> None:
    _target, failures = await _setup(
        tmp_path, [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]
    )
    assert failures[0][0] == "data"
    assert "'persistentVolumeClaim' is not supported by this node agent" in failures[0][1]


async def test_mounts_with_sub_paths(tmp_path: Path) -> None:
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "conf", "configMap": {"name": "cm"}},
    ]
    target, failures = await _setup(tmp_path, volumes, config_maps={"cm": {"data": {"f": "1"}}})
    assert not failures
    container = {
        "name": "app",
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/data"},
            {"name": "scratch", "mountPath": "/logs", "subPathExpr": "$(POD)/logs"},
            {"name": "conf", "mountPath": "/etc/f", "subPath": "f"},
            {"name": "scratch", "mountPath": "/ro", "readOnly": True},
        ],
    }
    mounts = {m.container_path: m for m in target.mounts(container, {"POD": "p"})}
    assert mounts["/logs"].host_path == (target.paths["scratch"] / "p" / "logs").resolve()
    assert mounts["/logs"].host_path.is_dir(), "a subPath of an emptyDir is made"
    assert mounts["/etc/f"].read_only and mounts["/etc/f"].host_path.read_text() == "1"
    assert mounts["/ro"].read_only and not mounts["/data"].read_only
    with pytest.raises(VolumeError, match="missing value for POD"):
        target.mounts(
            {
                "name": "app",
                "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPathExpr": "$(POD)"}],
            },
            {},
        )
    with pytest.raises(VolumeError, match="cannot find volume 'nope'"):
        target.mounts({"name": "app", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, {})
    with pytest.raises(VolumeError, match="does not exist"):
        target.mounts(
            {"name": "app", "volumeMounts": [{"name": "conf", "mountPath": "/x", "subPath": "g"}]},
            {},
        )
    (target.paths["scratch"] / "link").symlink_to("/etc")
    with pytest.raises(VolumeError, match="not within volume path"):
        target.mounts(
            {
                "name": "app",
                "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": "link"}],
            },
            {},
        )


def test_referenced_objects_of_volumes() -> None:
    pod = {
        "spec": {
            "volumes": [
                {"name": "a", "configMap": {"name": "cm1"}},
                {"name": "b", "secret": {"secretName": "s1"}},
                {
                    "name": "c",
                    "projected": {
                        "sources": [{"configMap": {"name": "cm2"}}, {"secret": {"name": "s2"}}]
                    },
                },
            ]
        }
    }
    assert referenced_objects(pod) == ({"cm1", "cm2"}, {"s1", "s2"})


async def test_a_memory_empty_dir_is_a_tmpfs_or_says_why_not(tmp_path: Path) -> None:
    volume = {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
    pod = {**POD, "spec": {**POD["spec"], "volumes": [volume]}}
    target = PodVolumes(tmp_path / "pod", ())
    failures, notices = await target.setup(
        pod, PodFacts(pod), config_maps={}, secrets={}, fetch_token=_no_token
    )
    path = target.paths["mem"]
    try:
        assert not failures and path.is_dir()
        if notices:  # this host cannot mount a tmpfs here: a directory, and a warning
            assert notices[0].reason == "MemoryMediumUnavailable"
            assert 'emptyDir volume "mem" asks for medium Memory' in notices[0].message
            assert not os.path.ismount(path)
        else:
            assert os.path.ismount(path)
    finally:
        await target.teardown()
    assert not os.path.ismount(path)
    fake = PodVolumes(tmp_path / "fake-pod", (), tmpfs=False)
    failures, notices = await fake.setup(
        pod, PodFacts(pod), config_maps={}, secrets={}, fetch_token=_no_token
    )
    assert not failures and not notices and not os.path.ismount(fake.paths["mem"])
