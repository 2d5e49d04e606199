"""A container's environment, command and args, as the kubelet builds them.

Upstream's ``makeEnvironmentVariables`` and ``ExpandContainerCommandAndArgs``, as pure
functions over what the agent has already fetched (the ConfigMaps, Secrets and Services the
container refers to), so every rule is testable without a cluster:

1. ``envFrom`` first, in order: every key of the ConfigMap's ``data`` or the Secret's
   ``data`` (decoded), with the ``prefix``; a key that is not a valid variable name is skipped
   and named in an ``InvalidEnvironmentVariableNames`` warning. A missing object is an error
   unless ``optional``.
2. ``env`` next, in order, each overriding what came before: a literal ``value`` with
   ``$(VAR)`` expanded against the variables defined so far and the service variables; or a
   ``valueFrom``: ``fieldRef`` (the downward API), ``resourceFieldRef`` (limits default to
   the node's allocatable, values divided by ``divisor`` and rounded up),
   ``configMapKeyRef``/``secretKeyRef`` (a missing object or key is an error with upstream's
   wording unless ``optional``, which leaves the variable out).
3. The service variables last (``{SVC}_SERVICE_HOST``, ``_SERVICE_PORT``, Docker link
   variables) for the ``kubernetes`` Service of ``default`` always and for the Services of
   the pod's namespace unless ``enableServiceLinks`` is false, each unless the pod defines
   that name itself.

Errors are :class:`EnvError`: the container waits with reason CreateContainerConfigError and
the error's message, as upstream's does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import field, frozen

from engenho.node_agent.expansion import expand, mapping_for
from engenho.schema.errors import QuantityError
from engenho.schema.quantity import Quantity
from engenho.selectors.validation import go_quote

__all__ = [
    "EnvError",
    "EnvResult",
    "PodFacts",
    "container_resource_value",
    "decode_secret",
    "expand_command",
    "expand_static",
    "field_path_value",
    "format_map",
    "is_env_var_name",
    "referenced_objects",
    "resolve_env",
    "service_env",
]

Obj = Mapping[str, Any]
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_MASTER_SERVICES = frozenset({"kubernetes"})
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class EnvError(Exception):
    """The environment cannot be built; the message is upstream's (``configmap "x" not
    found``, ``couldn't find key k in ConfigMap ns/x``)."""

    @property
    def message(self) -> str:
        return str(self)


@frozen
class PodFacts:
    """What the downward API reads besides the pod object: its addresses and the node's
    allocatable resources (the default of unset limits)."""

    pod: Obj
    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()
    allocatable: Mapping[str, str] = field(factory=dict)

    @property
    def namespace(self) -> str:
        return str((self.pod.get("metadata") or {}).get("namespace") or "")


@frozen
class EnvResult:
    env: tuple[tuple[str, str], ...]
    """``(name, value)`` in order: the pod's variables, then the service variables."""
    warnings: tuple[tuple[str, str], ...] = ()
    """``(reason, message)`` of Warning events to record (skipped invalid names)."""

    def as_dict(self) -> dict[str, str]:
        return dict(self.env)


# ---------------------------------------------------------------------------- names


def is_env_var_name(name: str) -> bool:
    """Upstream's ``IsEnvVarName``: letters, digits, ``_``, ``-``, ``.``, not starting with a
    digit, and not ``.``, ``..`` or anything starting with ``..``."""
    return bool(_ENV_NAME.fullmatch(name)) and not name.startswith("..") and name != "."


def _is_qualified_name(name: str) -> bool:
    prefix, slash, rest = name.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(rest) <= 63 and bool(_QUALIFIED_NAME.fullmatch(rest))


# ---------------------------------------------------------------------------- the downward API


def format_map(values: Mapping[str, str]) -> str:
    """``key="value"`` lines in key order (upstream's ``FormatMap``: labels and annotations
    as a whole)."""
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


def _split_subscript(path: str) -> tuple[str, str] | None:
    """``metadata.labels['app']`` → ``("metadata.labels", "app")``."""
    if not path.endswith("']"):
        return None
    head, sep, key = path[:-2].partition("['")
    if not sep or not head:
        return None
    return head, key


_POD_FIELD_PATHS = frozenset(
    {
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)


def field_path_value(facts: PodFacts, field_path: str) -> str:
    """A ``fieldRef``'s value (upstream's ``podFieldSelectorRuntimeValue`` over
    ``ConvertDownwardAPIFieldLabel`` and ``ExtractFieldPathAsString``)."""
    pod = facts.pod
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    subscripted = _split_subscript(field_path)
    path = subscripted[0] if subscripted else field_path
    if path == "spec.host":
        path = "spec.nodeName"
    if path not in _POD_FIELD_PATHS:
        raise EnvError(f"field label not supported: {path}")
    if subscripted is not None:
        key = subscripted[1]
        if path == "metadata.annotations":
            if not _is_qualified_name(key.lower()):
                raise EnvError(f"invalid key subscript in {field_path}")
            return str((meta.get("annotations") or {}).get(key, ""))
        if path == "metadata.labels":
            if not _is_qualified_name(key):
                raise EnvError(f"invalid key subscript in {field_path}")
            return str((meta.get("labels") or {}).get(key, ""))
        raise EnvError(f"fieldPath {field_path!r} does not support subscript")
    match path:
        case "spec.nodeName":
            return str(spec.get("nodeName") or "")
        case "spec.serviceAccountName":
            return str(spec.get("serviceAccountName") or "")
        case "status.hostIP":
            return facts.host_ips[0] if facts.host_ips else ""
        case "status.hostIPs":
            return ",".join(facts.host_ips)
        case "status.podIP":
            return facts.pod_ips[0] if facts.pod_ips else ""
        case "status.podIPs":
            return ",".join(facts.pod_ips)
        case "metadata.annotations":
            return format_map(meta.get("annotations") or {})
        case "metadata.labels":
            return format_map(meta.get("labels") or {})
        case "metadata.name":
            return str(meta.get("name") or "")
        case "metadata.namespace":
            return str(meta.get("namespace") or "")
        case "metadata.uid":
            return str(meta.get("uid") or "")
    raise EnvError(f"unsupported fieldPath: {path}")


def _quantity(value: Any) -> Quantity | None:
    if value is None:
        return None
    try:
        return Quantity.from_json(value)
    except QuantityError:
        return None


def container_resource_value(selector: Obj, container: Obj, allocatable: Mapping[str, str]) -> str:
    """A ``resourceFieldRef``'s value (upstream's ``ExtractContainerResourceValue`` over the
    container with unset limits defaulted to the node's allocatable)."""
    resource = str(selector.get("resource") or "")
    divisor = _quantity(selector.get("divisor"))
    if divisor is None or not divisor:
        divisor = Quantity.parse("1")
    resources = container.get("resources") or {}
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise EnvError(f"unsupported container resource : {resource}")
    values = dict(resources.get(kind) or {})
    if kind == "limits":
        for default in ("cpu", "memory", "ephemeral-storage"):
            if default not in values and default in allocatable:
                values[default] = allocatable[default]
    if name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
        raise EnvError(f"unsupported container resource : {resource}")
    quantity = _quantity(values.get(name)) or Quantity.parse("0")
    if name == "cpu":
        return str(-(-quantity.milli_value() // max(1, divisor.milli_value())))
    return str(-(-quantity.value() // max(1, divisor.value())))


# ---------------------------------------------------------------------------- services


def _service_ip_set(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _service_variables(service: Obj) -> list[tuple[str, str]]:
    """Upstream's ``envvars.FromServices`` for one Service."""
    spec = service.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, Mapping)]
    if not ports:
        return []
    ip = str(spec["clusterIP"])
    prefix = _env_name(str((service.get("metadata") or {}).get("name") or ""))
    port_name = f"{prefix}_SERVICE_PORT"
    result = [(f"{prefix}_SERVICE_HOST", ip), (port_name, str(ports[0].get("port")))]
    result += [
        (f"{port_name}_{_env_name(str(port['name']))}", str(port.get("port")))
        for port in ports
        if port.get("name")
    ]
    for index, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        number = int(port.get("port") or 0)
        url = f"{protocol.lower()}://{_join_host_port(ip, number)}"
        if index == 0:
            result.append((f"{prefix}_PORT", url))
        port_prefix = f"{prefix}_PORT_{number}_{protocol.upper()}"
        result += [
            (port_prefix, url),
            (f"{port_prefix}_PROTO", protocol.lower()),
            (f"{port_prefix}_PORT", str(number)),
            (f"{port_prefix}_ADDR", ip),
        ]
    return result


def service_env(
    services: Iterable[Obj], namespace: str, *, enable_service_links: bool = True
) -> dict[str, str]:
    """The service variables of a pod in ``namespace`` (upstream's ``getServiceEnvVarMap``):
    the ``kubernetes`` Service of ``default`` always, the namespace's Services when links
    are enabled (a namespace's own ``kubernetes`` Service wins over the default one's)."""
    chosen: dict[str, Obj] = {}
    for service in services:
        if not _service_ip_set(service):
            continue
        meta = service.get("metadata") or {}
        name, service_namespace = str(meta.get("name") or ""), meta.get("namespace")
        if service_namespace == "default" and name in _MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif service_namespace == namespace and enable_service_links:
            chosen[name] = service
    variables: dict[str, str] = {}
    for name in sorted(chosen):
        variables.update(_service_variables(chosen[name]))
    return variables


# ---------------------------------------------------------------------------- resolution


def referenced_objects(container: Obj) -> tuple[set[str], set[str]]:
    """The names of the ConfigMaps and Secrets the container's env refers to."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for source in container.get("envFrom") or []:
        if (source.get("configMapRef") or {}).get("name"):
            config_maps.add(str(source["configMapRef"]["name"]))
        if (source.get("secretRef") or {}).get("name"):
            secrets.add(str(source["secretRef"]["name"]))
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if (value_from.get("configMapKeyRef") or {}).get("name"):
            config_maps.add(str(value_from["configMapKeyRef"]["name"]))
        if (value_from.get("secretKeyRef") or {}).get("name"):
            secrets.add(str(value_from["secretKeyRef"]["name"]))
    return config_maps, secrets


def decode_secret(secret: Obj) -> dict[str, bytes]:
    """A Secret's ``data``, decoded (a value that is not base64 is taken as it is)."""
    decoded: dict[str, bytes] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            decoded[str(key)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            decoded[str(key)] = str(value).encode()
    return decoded


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def resolve_env(
    container: Obj,
    facts: PodFacts,
    *,
    config_maps: Mapping[str, Obj | None],
    secrets: Mapping[str, Obj | None],
    services: Iterable[Obj] = (),
) -> EnvResult:
    """The container's environment (see the module docstring). ``config_maps`` and
    ``secrets`` map the names :func:`referenced_objects` returned to the objects, or to None
    when they do not exist."""
    namespace = facts.namespace
    links = (facts.pod.get("spec") or {}).get("enableServiceLinks")
    service_vars = service_env(services, namespace, enable_service_links=links is not False)
    defined: dict[str, str] = {}
    warnings: list[tuple[str, str]] = []

    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        if source.get("configMapRef"):
            ref, kind, label = source["configMapRef"], "configmap", "configMap"
            obj = config_maps.get(str(ref.get("name")))
            data = None if obj is None else {k: str(v) for k, v in (obj.get("data") or {}).items()}
        elif source.get("secretRef"):
            ref, kind, label = source["secretRef"], "secret", "secret"
            obj = secrets.get(str(ref.get("name")))
            data = None if obj is None else {k: _text(v) for k, v in decode_secret(obj).items()}
        else:
            continue
        name = str(ref.get("name"))
        if data is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'{kind} "{name}" not found')
        invalid = []
        for key in sorted(data):
            full = prefix + key
            if not is_env_var_name(full):
                invalid.append(full)
                continue
            defined[full] = data[key]
        if invalid:
            warnings.append(
                (
                    "InvalidEnvironmentVariableNames",
                    f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {label} "
                    f"{namespace}/{name} were skipped since they are considered invalid "
                    "environment variable names.",
                )
            )

    mapping = mapping_for(defined, service_vars)
    for var in container.get("env") or []:
        name = str(var.get("name"))
        value = str(var.get("value") or "")
        value_from = var.get("valueFrom")
        if value:
            value = expand(value, mapping)
        elif value_from:
            resolved = _value_from(value_from, container, facts, config_maps, secrets)
            if resolved is None:
                continue  # an optional source that is missing: the variable is left out
            value = resolved
        defined[name] = value

    env = list(defined.items())
    env += [(k, v) for k, v in service_vars.items() if k not in defined]
    return EnvResult(tuple(env), tuple(warnings))


def _value_from(
    value_from: Obj,
    container: Obj,
    facts: PodFacts,
    config_maps: Mapping[str, Obj | None],
    secrets: Mapping[str, Obj | None],
) -> str | None:
    namespace = facts.namespace
    if value_from.get("fieldRef"):
        return field_path_value(facts, str(value_from["fieldRef"].get("fieldPath") or ""))
    if value_from.get("resourceFieldRef"):
        return container_resource_value(
            value_from["resourceFieldRef"], container, facts.allocatable
        )
    if value_from.get("configMapKeyRef"):
        ref = value_from["configMapKeyRef"]
        name, key, optional = str(ref.get("name")), str(ref.get("key")), bool(ref.get("optional"))
        obj = config_maps.get(name)
        if obj is None:
            if optional:
                return None
            raise EnvError(f'configmap "{name}" not found')
        data = obj.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise EnvError(f"couldn't find key {key} in ConfigMap {namespace}/{name}")
        return str(data[key])
    if value_from.get("secretKeyRef"):
        ref = value_from["secretKeyRef"]
        name, key, optional = str(ref.get("name")), str(ref.get("key")), bool(ref.get("optional"))
        obj = secrets.get(name)
        if obj is None:
            if optional:
                return None
            raise EnvError(f'secret "{name}" not found')
        decoded = decode_secret(obj)
        if key not in decoded:
            if optional:
                return None
            raise EnvError(f"couldn't find key {key} in Secret {namespace}/{name}")
        return _text(decoded[key])
    return ""


def expand_command(
    container: Obj, env: Sequence[tuple[str, str]]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``command`` and ``args`` with ``$(VAR)`` expanded against the final environment
    (upstream's ``ExpandContainerCommandAndArgs``)."""
    mapping = mapping_for(dict(env))
    command = tuple(expand(str(part), mapping) for part in container.get("command") or [])
    args = tuple(expand(str(part), mapping) for part in container.get("args") or [])
    return command, args


def expand_static(argv: Sequence[str], container: Obj) -> tuple[str, ...]:
    """An exec probe's command, expanded against the container's literal env values only
    (upstream's ``ExpandContainerCommandOnlyStatic``)."""
    static = {
        str(var.get("name")): str(var.get("value"))
        for var in container.get("env") or []
        if var.get("value") is not None
    }
    mapping = mapping_for(static)
    return tuple(expand(str(part), mapping) for part in argv)
