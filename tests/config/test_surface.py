"""engenho.config's public surface: what the package exports, and that it is usable without
the rest of engenho (the import-linter contract says so statically; this says it at run time)."""

from __future__ import annotations

import subprocess
import sys

import engenho.config


def test_surface() -> None:
    assert set(engenho.config.__all__) == {
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
    }


def test_importing_it_loads_no_other_engenho_package() -> None:
    code = (
        "import sys, engenho.config; "
        "print(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith('engenho.') and not m.startswith('engenho.config')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
