"""The OCI bundle's config.json and the user a container runs as, without crun: namespaces
joined by path or created, binds, cgroup limits only when enforced, containerd's defaults;
users by name, id, group and security context, from the image's passwd and group files;
argv, environment and exit reasons per Kubernetes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engenho.node_agent.images import ImageConfig
from engenho.node_agent.runtime import (
    CreateContainerError,
    EnvVar,
    Resources,
    exit_reason,
    merge_env,
    resolve_argv,
)
from engenho.node_agent.runtimes.oci_spec import (
    DEFAULT_CAPABILITIES,
    BindMount,
    ResolvedUser,
    build_config,
    cpu_quota,
    cpu_shares,
    resolve_user,
)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "app:x:1000:1001:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (root / "etc/group").write_text(
        "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\nnogroup:x:65534:\n"
    )
    return root


def test_users_by_name_id_group_and_security_context(rootfs: Path) -> None:
    assert resolve_user(rootfs, "") == ResolvedUser(0, 0)
    assert resolve_user(rootfs, "app") == ResolvedUser(1000, 1001, (10,))
    assert resolve_user(rootfs, "1000") == ResolvedUser(1000, 1001, (10,))
    assert resolve_user(rootfs, "4242") == ResolvedUser(4242, 0)
    assert resolve_user(rootfs, "app:nogroup") == ResolvedUser(1000, 65534, (10,))
    assert resolve_user(rootfs, "5:6") == ResolvedUser(5, 6)
    assert resolve_user(rootfs, "app", run_as_user=65534) == ResolvedUser(65534, 65534)
    assert resolve_user(
        rootfs, "", run_as_user=1000, run_as_group=7, supplemental_groups=(20, 7)
    ) == ResolvedUser(1000, 7, (10, 20))
    with pytest.raises(CreateContainerError, match="unable to find user ghost"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(CreateContainerError, match="unable to find group ghosts"):
        resolve_user(rootfs, "app:ghosts")


def test_a_passwd_symlink_cannot_read_host_files(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    secret = tmp_path / "host-passwd"
    secret.write_text("app:x:7:7::/:/bin/sh\n")
    (root / "etc/passwd").symlink_to(secret)
    # Resolved inside the tree, the link points at nothing: no user "app" exists.
    with pytest.raises(CreateContainerError):
        resolve_user(root, "app")


def test_config_json(tmp_path: Path) -> None:
    config = build_config(
        argv=["sh", "-c", "echo hi"],
        env=["PATH=/bin", "A=b"],
        cwd="/work",
        user=ResolvedUser(1000, 1001, (10,)),
        hostname="web-0",
        rootfs=tmp_path / "rootfs",
        tty=False,
        mounts=[BindMount(tmp_path / "vol", "/data", read_only=True)],
        namespaces={"pid": None, "mount": None, "ipc": "/ns/ipc", "network": "/ns/net"},
        resources=Resources(cpu_limit_millis=250, memory_limit_bytes=64 << 20),
        cgroups_path="/engenho/abc",
        cgroup_mount=True,
    )
    process = config["process"]
    assert process["args"] == ["sh", "-c", "echo hi"]
    assert process["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [10]}
    assert process["cwd"] == "/work"
    assert process["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert process["noNewPrivileges"] is False
    assert config["hostname"] == "web-0"
    assert config["linux"]["namespaces"] == [
        {"type": "pid"},
        {"type": "mount"},
        {"type": "ipc", "path": "/ns/ipc"},
        {"type": "network", "path": "/ns/net"},
    ]
    resources = config["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20}
    assert resources["cpu"] == {"quota": 25_000, "period": 100_000, "shares": 256}
    assert config["linux"]["cgroupsPath"] == "/engenho/abc"
    destinations = [m["destination"] for m in config["mounts"]]
    assert destinations[:6] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    assert "/sys/fs/cgroup" in destinations
    bind = config["mounts"][-1]
    assert bind == {
        "destination": "/data",
        "type": "bind",
        "source": str(tmp_path / "vol"),
        "options": ["rbind", "rprivate", "ro"],
    }
    unenforced = build_config(
        argv=["true"],
        env=[],
        cwd="",
        user=ResolvedUser(0, 0),
        hostname=None,
        rootfs=tmp_path,
        tty=True,
        mounts=[],
        namespaces={"pid": None},
        resources=None,
        cgroups_path=None,
        cgroup_mount=False,
    )
    assert "resources" not in unenforced["linux"] and "cgroupsPath" not in unenforced["linux"]
    assert "hostname" not in unenforced and unenforced["process"]["cwd"] == "/"
    assert "/sys/fs/cgroup" not in [m["destination"] for m in unenforced["mounts"]]


def test_cpu_conversions_follow_upstream() -> None:
    assert cpu_quota(1000) == 100_000
    assert cpu_quota(1) == 1_000  # the 1 ms floor
    assert cpu_shares(0) == 2
    assert cpu_shares(500) == 512


def test_argv_follows_the_kubernetes_rule() -> None:
    image = ImageConfig(entrypoint=("/entry",), cmd=("--default",))
    assert resolve_argv(image, (), ()) == ("/entry", "--default")
    assert resolve_argv(image, (), ("--mine",)) == ("/entry", "--mine")
    assert resolve_argv(image, ("sh",), ()) == ("sh",)
    assert resolve_argv(image, ("sh",), ("-c", "x")) == ("sh", "-c", "x")
    assert resolve_argv(ImageConfig(), (), ()) == ()


def test_environment_merges_over_the_images() -> None:
    merged = merge_env(
        ["PATH=/usr/bin", "LANG=C", "EMPTY="],
        [EnvVar("LANG", "pt_BR.UTF-8"), EnvVar("NEW", "1")],
        hostname="web-0",
    )
    assert merged == ("HOSTNAME=web-0", "PATH=/usr/bin", "LANG=pt_BR.UTF-8", "EMPTY=", "NEW=1")
    assert merge_env([], [])[-1].startswith("PATH=/usr/local/sbin")


def test_exit_reasons() -> None:
    assert exit_reason(0) == "Completed"
    assert exit_reason(1) == "Error"
    assert exit_reason(137, oom_killed=True) == "OOMKilled"
