"""Helpers for the oci runtime's end-to-end tests: reading pods through kubectl, waiting on
them with a deadline (failing with the pod's status), and finding a container's process on
the host through crun's own state."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import yaml

from tests.integration.server import ServerProcess, kubectl

Pod = dict[str, Any]


def get_pod(server: ServerProcess, name: str) -> Pod:
    """The pod as the API holds it, or ``{}`` when there is none."""
    result = kubectl(server, "get", "pod", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def pods_labelled(server: ServerProcess, selector: str) -> list[Pod]:
    result = kubectl(server, "get", "pods", "-l", selector, "-o", "json")
    items: list[Pod] = json.loads(result.stdout)["items"]
    return items


def wait_pod(
    server: ServerProcess,
    name: str,
    until: Callable[[Pod], bool],
    what: str,
    timeout: float = 60,
) -> Pod:
    """Poll the pod until ``until`` holds; fail saying ``what`` was awaited, with its status."""
    deadline = time.monotonic() + timeout
    pod: Pod = {}
    while time.monotonic() < deadline:
        pod = get_pod(server, name)
        if pod and until(pod):
            return pod
        time.sleep(0.1)
    raise AssertionError(
        f"pod {name} never became {what} in {timeout:.0f} s: "
        f"{json.dumps(pod.get('status'), indent=1) if pod else 'no such pod'}\n"
        + diagnosis(server, name)
    )


def diagnosis(server: ServerProcess, name: str) -> str:
    """What to show beside a pod's status when a wait fails: its Events and what the server
    (and so its embedded node agent) last logged."""
    lines = [f"  {e['type']} {e['reason']}: {e['message']}" for e in events_for(server, name)]
    return (
        "events:\n"
        + ("\n".join(lines) or "  (none)")
        + "\nserver output (last 40 lines):\n"
        + "".join(server.output[-40:])
    )


def wait_phase(server: ServerProcess, name: str, phase: str, timeout: float = 60) -> Pod:
    return wait_pod(server, name, lambda p: p.get("status", {}).get("phase") == phase, phase)


def container_status(pod: Pod, container: str | None = None) -> dict[str, Any]:
    """The status of ``container`` (default: the pod's only one), or ``{}`` before any."""
    statuses: list[dict[str, Any]] = pod.get("status", {}).get("containerStatuses") or []
    for status in statuses:
        if container is None or status["name"] == container:
            return status
    return {}


def is_running_and_ready(pod: Pod) -> bool:
    status = container_status(pod)
    return (
        pod.get("status", {}).get("phase") == "Running"
        and "running" in status.get("state", {})
        and status.get("ready") is True
    )


def apply(server: ServerProcess, *objects: dict[str, Any]) -> None:
    """Create ``objects`` with one ``kubectl apply`` (so their pods start together): a stream
    of YAML documents, as a ``kind: List`` makes kubectl validate against the OpenAPI v2
    document in protobuf, which engenho does not serve."""
    kubectl(server, "apply", "-f", "-", input=yaml.safe_dump_all(objects))


def pod_manifest(
    name: str,
    script: str,
    *,
    restart: str = "Always",
    grace: int | None = None,
    **container: Any,
) -> dict[str, Any]:
    """A busybox pod running ``sh -c script`` as container ``app``, scheduled by the server."""
    spec: dict[str, Any] = {
        "restartPolicy": restart,
        "containers": [
            {"name": "app", "image": "busybox", "command": ["sh", "-c", script], **container}
        ],
    }
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


SLEEP_UNTIL_TERM = "trap 'exit 0' TERM; sleep 3600 & wait"
"""A long-running shell that exits at once on SIGTERM: ``wait`` returns for the trap, where a
foreground ``sleep`` would hold it off for an hour. (A container's process is PID 1 of its
PID namespace, so without a trap SIGTERM would do nothing until the grace period ends.)"""


# -- the container's process on the host ---------------------------------------------------


@attrs.frozen
class HostProcess:
    """A process, named by its pid and its start time (so a reused pid is not mistaken)."""

    pid: int
    start_ticks: int

    def alive(self) -> bool:
        stat = _stat(self.pid)
        # A zombie has exited already; only its parent's wait is missing.
        return stat is not None and stat[1] == self.start_ticks and stat[0] not in "ZX"


def _stat(pid: int) -> tuple[str, int] | None:
    """The state letter and start time (field 22) of ``/proc/<pid>/stat``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces
    return fields[0], int(fields[19])


def container_process(server: ServerProcess, container_id: str) -> HostProcess:
    """The host's view of a running container's main process, as crun reports it from the
    oci runtime's state root (``DATA_DIR/node/oci/crun``). ``container_id`` is the status'
    ``oci://<id>``."""
    scheme, _, bare = container_id.partition("://")
    assert scheme == "oci", container_id
    crun = shutil.which("crun") or "crun"
    root = server.data_dir / "node" / "oci" / "crun"
    result = subprocess.run(
        [crun, "--root", str(root), "state", bare],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"crun state {bare}: {result.stderr}"
    state = json.loads(result.stdout)
    assert state["status"] == "running", state
    pid = int(state["pid"])
    stat = _stat(pid)
    assert stat is not None, f"crun says {bare} runs as pid {pid}, which does not exist"
    return HostProcess(pid, stat[1])


def events_for(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    """The Events about object ``name`` in the default namespace."""
    result = kubectl(server, "get", "events", "-o", "json", check=False)
    items: list[dict[str, Any]] = (
        json.loads(result.stdout)["items"] if result.returncode == 0 else []
    )
    return [e for e in items if e.get("involvedObject", {}).get("name") == name]
