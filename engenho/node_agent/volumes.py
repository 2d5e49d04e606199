"""A pod's volumes on the node, and the mounts each container gets.

Every volume lives under the pod's directory, as upstream lays it out
(``<pod dir>/volumes/kubernetes.io~<plugin>/<name>``), except hostPath, which is the host's
own path:

- ``emptyDir``: a directory (mode 0777); ``medium: Memory`` is a tmpfs when one can be
  mounted here, else a directory on disk, and the agent says so in an Event.
- ``configMap``, ``secret``, ``downwardAPI``, ``projected`` (configMap, secret, downwardAPI
  and serviceAccountToken sources): files written by
  :class:`~engenho.node_agent.atomic.AtomicWriter` from ``items`` (or every key),
  ``defaultMode``/``mode`` and ``optional``, with upstream's error wording; written again
  when their sources change. Mounted read-only, as upstream mounts them.
- ``hostPath``: only paths under the configured allow-list (symlinks resolved), with the
  ``type`` checks and creations of upstream.

Anything else (PersistentVolumeClaims, CSI, NFS, ...) is refused with a clear FailedMount
message: this agent has no volume plugins for them. Errors are :class:`VolumeError`; the
agent posts them as ``FailedMount`` (``MountVolume.SetUp failed for volume "x" : ...``) and
tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from engenho.node_agent.atomic import AtomicWriter, FileProjection, PayloadError
from engenho.node_agent.environment import (
    EnvError,
    PodFacts,
    container_resource_value,
    decode_secret,
    field_path_value,
)
from engenho.node_agent.expansion import expand
from engenho.node_agent.runtime import Mount
from engenho.node_agent.spawning import run_command
from engenho.schema.quantity import Quantity

__all__ = [
    "PodVolumes",
    "TokenFetcher",
    "VolumeError",
    "VolumeNotice",
    "referenced_objects",
]

_log = logging.getLogger("engenho.node_agent")
Obj = Mapping[str, Any]
TokenFetcher = Callable[[str, str | None, int], Awaitable[str]]
"""``fetch(service_account, audience, expiration_seconds) -> token``; raises VolumeError."""

_DEFAULT_MODE = 0o644
_ATOMIC_KINDS = ("configMap", "secret", "downwardAPI", "projected")
_PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
_SUPPORTED = (*_PLUGIN_DIRS, "hostPath")


class VolumeError(Exception):
    """A volume cannot be set up (or a mount cannot be made); the message is upstream's."""

    @property
    def message(self) -> str:
        return str(self)


@frozen
class VolumeNotice:
    """Something worth an Event that is not a failure (a Memory emptyDir on disk)."""

    reason: str
    message: str


def _kind(volume: Obj) -> str | None:
    for kind in (*_SUPPORTED, "persistentVolumeClaim", "csi", "ephemeral", "nfs", "iscsi"):
        if volume.get(kind) is not None:
            return kind
    for key in volume:
        if key != "name":
            return str(key)
    return None


def referenced_objects(pod: Obj) -> tuple[set[str], set[str]]:
    """The ConfigMaps and Secrets the pod's volumes read."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if (volume.get("configMap") or {}).get("name"):
            config_maps.add(str(volume["configMap"]["name"]))
        if (volume.get("secret") or {}).get("secretName"):
            secrets.add(str(volume["secret"]["secretName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("configMap") or {}).get("name"):
                config_maps.add(str(source["configMap"]["name"]))
            if (source.get("secret") or {}).get("name"):
                secrets.add(str(source["secret"]["name"]))
    return config_maps, secrets


def _mode(item: Obj, default: int) -> int:
    mode = item.get("mode")
    return int(mode) if mode is not None else default


def _config_map_payload(
    name: str,
    items: Sequence[Obj],
    config_map: Obj | None,
    default_mode: int,
    optional: bool,
) -> dict[str, FileProjection]:
    """Upstream's configmap ``MakePayload``."""
    if config_map is None:
        if optional:
            return {}
        raise VolumeError(f'configmap "{name}" not found')
    data = {str(k): str(v).encode() for k, v in (config_map.get("data") or {}).items()}
    binary = {
        str(k): decode_secret({"data": {k: v}})[str(k)]
        for k, v in (config_map.get("binaryData") or {}).items()
    }
    if not items:
        payload = {key: FileProjection(value, default_mode) for key, value in data.items()}
        payload |= {key: FileProjection(value, default_mode) for key, value in binary.items()}
        return payload
    payload = {}
    for item in items:
        key = str(item.get("key"))
        if key in data:
            content = data[key]
        elif key in binary:
            content = binary[key]
        elif optional:
            continue
        else:
            raise VolumeError(f"configmap references non-existent config key: {key}")
        payload[str(item.get("path"))] = FileProjection(content, _mode(item, default_mode))
    return payload


def _secret_payload(
    name: str,
    items: Sequence[Obj],
    secret: Obj | None,
    default_mode: int,
    optional: bool,
) -> dict[str, FileProjection]:
    """Upstream's secret ``MakePayload``."""
    if secret is None:
        if optional:
            return {}
        raise VolumeError(f'secret "{name}" not found')
    data = decode_secret(secret)
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    payload = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"references non-existent secret key: {key}")
        payload[str(item.get("path"))] = FileProjection(data[key], _mode(item, default_mode))
    return payload


def _find_container(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") == name:
            return dict(container)
    return None


def _downward_payload(
    items: Sequence[Obj], facts: PodFacts, default_mode: int
) -> dict[str, FileProjection]:
    """Upstream's downward API ``CollectData`` (metadata fields, resources by container)."""
    payload: dict[str, FileProjection] = {}
    errors: list[str] = []
    for item in items:
        path = posixpath.normpath(str(item.get("path")))
        try:
            value = _downward_value(item, facts)
        except EnvError as exc:
            errors.append(exc.message)
            continue
        if value is not None:
            payload[path] = FileProjection(value.encode(), _mode(item, default_mode))
    if errors:
        raise VolumeError(", ".join(errors))
    return payload


def _downward_value(item: Obj, facts: PodFacts) -> str | None:
    if item.get("fieldRef"):
        field_path = str(item["fieldRef"].get("fieldPath") or "")
        if not field_path.startswith("metadata."):
            raise EnvError(f"unsupported fieldPath: {field_path}")
        return field_path_value(facts, field_path)
    if item.get("resourceFieldRef"):
        selector = item["resourceFieldRef"]
        container = _find_container(facts.pod, str(selector.get("containerName") or ""))
        if container is None:
            raise EnvError(f"container {selector.get('containerName')!r} not found in the pod")
        return container_resource_value(selector, container, facts.allocatable)
    return None


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(root in ("/", path) or path.startswith(root.rstrip("/") + "/") for root in roots)


def _resolved(path: str) -> str:
    """``path`` with symlinks resolved as far as it exists (so that a link cannot lead out
    of an allowed directory)."""
    return os.path.realpath(path)


class PodVolumes:
    """The volumes of one pod under ``pod_dir``; ``allowlist`` bounds hostPath."""

    def __init__(self, pod_dir: Path, allowlist: Sequence[str], *, tmpfs: bool = True) -> None:
        self.pod_dir = pod_dir
        self._allowlist = tuple(allowlist)
        self._may_mount = tmpfs
        """False for runtimes without processes (fake): a Memory emptyDir is a plain
        directory, with no mount to make and nothing to say about it."""
        self.paths: dict[str, Path] = {}
        self.kinds: dict[str, str] = {}
        self._tmpfs: set[Path] = set()
        self._tried_tmpfs: set[Path] = set()

    def volume_dir(self, kind: str, name: str) -> Path:
        return self.pod_dir / "volumes" / _PLUGIN_DIRS[kind] / name

    async def setup(
        self,
        pod: Obj,
        facts: PodFacts,
        *,
        config_maps: Mapping[str, Obj | None],
        secrets: Mapping[str, Obj | None],
        fetch_token: TokenFetcher,
        memory_limit: int | None = None,
    ) -> tuple[list[tuple[str, str]], list[VolumeNotice]]:
        """Set up (or bring up to date) every volume; ``(failures, notices)`` with
        failures as ``(volume, message)``. Volumes that work are usable even if others
        failed."""
        failures: list[tuple[str, str]] = []
        notices: list[VolumeNotice] = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name"))
            try:
                notice = await self._setup_one(
                    pod, volume, facts, config_maps, secrets, fetch_token, memory_limit
                )
            except VolumeError as exc:
                failures.append((name, exc.message))
                continue
            except (PayloadError, OSError) as exc:
                failures.append((name, str(exc)))
                continue
            if notice is not None:
                notices.append(notice)
        return failures, notices

    async def _setup_one(
        self,
        pod: Obj,
        volume: Obj,
        facts: PodFacts,
        config_maps: Mapping[str, Obj | None],
        secrets: Mapping[str, Obj | None],
        fetch_token: TokenFetcher,
        memory_limit: int | None,
    ) -> VolumeNotice | None:
        name = str(volume.get("name"))
        kind = _kind(volume)
        if kind not in _SUPPORTED:
            raise VolumeError(
                f"volume type {kind or 'unknown'!r} is not supported by this node agent "
                f"(it has emptyDir, configMap, secret, hostPath, downwardAPI and projected)"
            )
        self.kinds[name] = kind
        source = volume.get(kind) or {}
        if kind == "hostPath":
            self.paths[name] = self._host_path(source)
            return None
        target = self.volume_dir(kind, name)
        if kind == "emptyDir":
            notice = await self._empty_dir(name, target, source, memory_limit)
            self.paths[name] = target
            return notice
        default_mode = int(source.get("defaultMode", _DEFAULT_MODE))
        payload: dict[str, FileProjection]
        if kind == "configMap":
            cm_name = str(source.get("name"))
            payload = _config_map_payload(
                cm_name,
                source.get("items") or [],
                config_maps.get(cm_name),
                default_mode,
                bool(source.get("optional")),
            )
        elif kind == "secret":
            secret_name = str(source.get("secretName"))
            payload = _secret_payload(
                secret_name,
                source.get("items") or [],
                secrets.get(secret_name),
                default_mode,
                bool(source.get("optional")),
            )
        elif kind == "downwardAPI":
            payload = _downward_payload(source.get("items") or [], facts, default_mode)
        else:
            payload = await self._projected(pod, source, facts, config_maps, secrets, fetch_token)
        await asyncio.to_thread(AtomicWriter(target).write, payload)
        self.paths[name] = target
        return None

    async def _projected(
        self,
        pod: Obj,
        source: Obj,
        facts: PodFacts,
        config_maps: Mapping[str, Obj | None],
        secrets: Mapping[str, Obj | None],
        fetch_token: TokenFetcher,
    ) -> dict[str, FileProjection]:
        default_mode = int(source.get("defaultMode", _DEFAULT_MODE))
        payload: dict[str, FileProjection] = {}
        errors: list[str] = []
        for part in source.get("sources") or []:
            try:
                if part.get("configMap") is not None:
                    cm = part["configMap"]
                    payload |= _config_map_payload(
                        str(cm.get("name")),
                        cm.get("items") or [],
                        config_maps.get(str(cm.get("name"))),
                        default_mode,
                        bool(cm.get("optional")),
                    )
                elif part.get("secret") is not None:
                    secret = part["secret"]
                    payload |= _secret_payload(
                        str(secret.get("name")),
                        secret.get("items") or [],
                        secrets.get(str(secret.get("name"))),
                        default_mode,
                        bool(secret.get("optional")),
                    )
                elif part.get("downwardAPI") is not None:
                    payload |= _downward_payload(
                        part["downwardAPI"].get("items") or [], facts, default_mode
                    )
                elif part.get("serviceAccountToken") is not None:
                    token = part["serviceAccountToken"]
                    account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
                    value = await fetch_token(
                        account,
                        token.get("audience"),
                        int(token.get("expirationSeconds") or 3600),
                    )
                    payload[str(token.get("path"))] = FileProjection(value.encode(), default_mode)
                elif part.get("clusterTrustBundle") is not None:
                    errors.append("clusterTrustBundle projections are not supported")
            except VolumeError as exc:
                errors.append(exc.message)
        if errors:
            raise VolumeError(", ".join(errors))
        return payload

    async def _empty_dir(
        self, name: str, target: Path, source: Obj, memory_limit: int | None
    ) -> VolumeNotice | None:
        await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
        if source.get("medium") != "Memory" or not self._may_mount:
            os.chmod(target, 0o777)  # noqa: S103 - upstream's emptyDir mode: any user may write
            return None
        if target in self._tmpfs or target in self._tried_tmpfs:
            return None
        self._tried_tmpfs.add(target)
        options = "mode=0777"
        size = source.get("sizeLimit")
        if size:
            options += f",size={_bytes(size)}"
        elif memory_limit:
            options += f",size={memory_limit}"
        error = await _mount_tmpfs(target, options)
        if error is None:
            self._tmpfs.add(target)
            return None
        os.chmod(target, 0o777)  # noqa: S103 - as above
        return VolumeNotice(
            "MemoryMediumUnavailable",
            f'emptyDir volume "{name}" asks for medium Memory, but a tmpfs cannot be mounted '
            f"on this node ({error}): it is a directory on disk instead",
        )

    def _host_path(self, source: Obj) -> Path:
        path = str(source.get("path") or "")
        kind = str(source.get("type") or "")
        if not path.startswith("/"):
            raise VolumeError(f"hostPath {path!r} is not an absolute path")
        resolved = _resolved(path)
        if not _under(resolved, self._allowlist):
            allowed = ", ".join(self._allowlist) or "none"
            raise VolumeError(
                f"hostPath {path} is not under an allowed directory "
                f"(node_agent.host_path_allowlist: {allowed})"
            )
        target = Path(resolved)
        if kind == "DirectoryOrCreate" and not target.exists():
            target.mkdir(mode=0o755, parents=True)
        elif kind == "FileOrCreate" and not target.exists():
            if not target.parent.is_dir():
                raise VolumeError(f"hostPath type check failed: {path} is not a file")
            target.touch(mode=0o644)
        checks = {
            "Directory": (Path.is_dir, "is not a directory"),
            "DirectoryOrCreate": (Path.is_dir, "is not a directory"),
            "File": (Path.is_file, "is not a file"),
            "FileOrCreate": (Path.is_file, "is not a file"),
            "Socket": (Path.is_socket, "is not a socket file"),
            "CharDevice": (Path.is_char_device, "is not a character device"),
            "BlockDevice": (Path.is_block_device, "is not a block device"),
        }
        check = checks.get(kind)
        if check is not None and not check[0](target):
            raise VolumeError(f"hostPath type check failed: {path} {check[1]}")
        return target

    # ------------------------------------------------------------------ mounts

    def mounts(self, container: Obj, env: Mapping[str, str]) -> tuple[Mount, ...]:
        """The runtime mounts of ``container`` (``volumeMounts`` with ``subPath`` or
        ``subPathExpr`` resolved); raises VolumeError, which the agent reports as a
        CreateContainerConfigError as upstream's ``makeMounts`` does."""
        mounts: list[Mount] = []
        for mount in container.get("volumeMounts") or []:
            name = str(mount.get("name"))
            base = self.paths.get(name)
            if base is None:
                raise VolumeError(
                    f"cannot find volume {name!r} to mount into container {container.get('name')!r}"
                )
            sub_path = str(mount.get("subPath") or "")
            if mount.get("subPathExpr"):
                missing: set[str] = set()

                def lookup(key: str) -> str:
                    value = env.get(key, "")
                    if not value:
                        missing.add(key)  # noqa: B023 - read right after the expansion
                    return value

                sub_path = expand(str(mount["subPathExpr"]), lookup)
                if missing:
                    raise VolumeError(f"missing value for {', '.join(sorted(missing))}")
            host = base
            if sub_path:
                host = self._sub_path(name, base, sub_path)
            read_only = bool(mount.get("readOnly")) or self.kinds.get(name) in _ATOMIC_KINDS
            mounts.append(Mount(host, str(mount.get("mountPath")), read_only))
        return tuple(mounts)

    def _sub_path(self, volume: str, base: Path, sub_path: str) -> Path:
        if posixpath.isabs(sub_path):
            raise VolumeError(f"error SubPath `{sub_path}` must not be an absolute path")
        if ".." in sub_path.split("/"):
            raise VolumeError(f"error SubPath `{sub_path}` must not contain '..'")
        host = base / sub_path
        if not host.exists() and not host.is_symlink():
            if self.kinds.get(volume) in _ATOMIC_KINDS:
                raise VolumeError(
                    f"failed to prepare subPath for volumeMount of volume {volume!r}: "
                    f"{sub_path} does not exist"
                )
            host.mkdir(mode=0o750, parents=True)
        real_base = os.path.realpath(base)
        real = os.path.realpath(host)
        if real != real_base and not real.startswith(real_base.rstrip("/") + "/"):
            raise VolumeError(
                f"failed to prepare subPath for volumeMount of volume {volume!r}: "
                f"subpath {real!r} not within volume path {real_base!r}"
            )
        return Path(real)

    # ------------------------------------------------------------------ teardown

    async def teardown(self) -> None:
        """Unmount what was mounted (the runtime deletes the directories with the pod)."""
        for target in list(self._tmpfs):
            with contextlib.suppress(OSError):
                await run_command(["umount", str(target)])
            self._tmpfs.discard(target)

    def remove_dirs(self) -> None:
        """Delete the volume directories (when no runtime sandbox owns the pod directory)."""
        shutil.rmtree(self.pod_dir / "volumes", ignore_errors=True)


def _bytes(value: Any) -> int:
    return Quantity.from_json(value).value()


async def _mount_tmpfs(target: Path, options: str) -> str | None:
    """Mount a tmpfs on ``target``; the reason it failed, or None."""
    try:
        result = await run_command(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)])
    except OSError as exc:
        return str(exc)
    if result.code != 0:
        return result.stderr.decode(errors="replace").strip() or f"mount exited {result.code}"
    return None
