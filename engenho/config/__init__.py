"""Typed configuration: the k3s ClusterConfig and its renderers, and engenho's tiered runtime
configuration (EngenhoConfig). See docs/config.md.

Nothing here imports any other part of engenho.
"""

from engenho.config.cluster_example import example_cluster_config
from engenho.config.cluster_loading import (
    cluster_config_document,
    load_cluster_config,
    parse_cluster_config,
)
from engenho.config.cluster_schema import (
    ArgoCdBootstrap,
    Bootstrap,
    ClusterConfig,
    Cni,
    Component,
    Dns,
    DualStack,
    FlannelBackend,
    FluxBootstrap,
    GitAuth,
    GitAuthKind,
    Ingress,
    KubeProxy,
    LoadBalancer,
    Network,
    NetworkPolicy,
    ProxyMode,
)
from engenho.config.controllers import CONTROLLERS, ControllerSpec
from engenho.config.defaults import SYSTEM_CONFIG_FILE, prescribed_defaults
from engenho.config.engenho_schema import (
    AuditSection,
    Capacity,
    ClusterSection,
    ControllerSettings,
    EngenhoConfig,
    NetworkingSection,
    NodeAgentSection,
    NodeLifecycleSection,
    ReplicationSection,
    Runtime,
    SchedulerSection,
    SchedulingStrategy,
    ServerSection,
    TlsSection,
)
from engenho.config.environment import CONFIG_FILE_VARIABLE, ENV_PREFIX, variable_for
from engenho.config.errors import ConfigError, ConfigFileError, InvalidConfigError
from engenho.config.flags import SERVER_FLAGS, ConfigFlag, add_config_arguments, config_flags
from engenho.config.k3s_rendering import K3sArgument, K3sRenderer
from engenho.config.locating import ConfigFile
from engenho.config.native_rendering import EngenhoRenderer
from engenho.config.networks import ListenAddress, PortRange
from engenho.config.problems import Problem
from engenho.config.renderers import RENDERERS
from engenho.config.rendering import ClusterRenderer, RenderedFile, Rendering, write_rendering
from engenho.config.resolving import (
    ResolvedConfig,
    config_document,
    resolve_config,
    validate_config_file,
)
from engenho.config.tiers import Source, Tier
from engenho.config.yamlio import dump_json, dump_yaml

__all__ = [
    "CONFIG_FILE_VARIABLE",
    "CONTROLLERS",
    "ENV_PREFIX",
    "RENDERERS",
    "SERVER_FLAGS",
    "SYSTEM_CONFIG_FILE",
    "ArgoCdBootstrap",
    "AuditSection",
    "Bootstrap",
    "Capacity",
    "ClusterConfig",
    "ClusterRenderer",
    "ClusterSection",
    "Cni",
    "Component",
    "ConfigError",
    "ConfigFile",
    "ConfigFileError",
    "ConfigFlag",
    "ControllerSettings",
    "ControllerSpec",
    "Dns",
    "DualStack",
    "EngenhoConfig",
    "EngenhoRenderer",
    "FlannelBackend",
    "FluxBootstrap",
    "GitAuth",
    "GitAuthKind",
    "Ingress",
    "InvalidConfigError",
    "K3sArgument",
    "K3sRenderer",
    "KubeProxy",
    "ListenAddress",
    "LoadBalancer",
    "Network",
    "NetworkPolicy",
    "NetworkingSection",
    "NodeAgentSection",
    "NodeLifecycleSection",
    "PortRange",
    "Problem",
    "ProxyMode",
    "RenderedFile",
    "Rendering",
    "ReplicationSection",
    "ResolvedConfig",
    "Runtime",
    "SchedulerSection",
    "SchedulingStrategy",
    "ServerSection",
    "Source",
    "Tier",
    "TlsSection",
    "add_config_arguments",
    "cluster_config_document",
    "config_document",
    "config_flags",
    "dump_json",
    "dump_yaml",
    "example_cluster_config",
    "load_cluster_config",
    "parse_cluster_config",
    "prescribed_defaults",
    "resolve_config",
    "validate_config_file",
    "variable_for",
    "write_rendering",
]
