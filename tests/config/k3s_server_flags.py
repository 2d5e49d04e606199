"""The long names of every ``k3s server`` flag, as data for the renderer tests.

Written from the k3s documentation (docs.k3s.io/cli/server: the "K3s Server CLI Help" listing,
which includes the agent flags a server also takes, and the option tables above it), k3s
v1.31. Every config.yaml key and every cmdline.txt flag the k3s renderer writes must be one of
these: a key k3s does not know is an error at start, and a misspelt one would be worse if it
were ignored.
"""

from __future__ import annotations

__all__ = ["BOOLEAN_FLAGS", "K3S_SERVER_FLAGS", "REPEATABLE_FLAGS"]

K3S_SERVER_FLAGS = frozenset(
    {
        # config, logging
        "config",
        "debug",
        "v",
        "vmodule",
        "log",
        "alsologtostderr",
        # listener
        "bind-address",
        "https-listen-port",
        "advertise-address",
        "advertise-port",
        "tls-san",
        "tls-san-security",
        # data
        "data-dir",
        # networking
        "cluster-cidr",
        "service-cidr",
        "service-node-port-range",
        "cluster-dns",
        "cluster-domain",
        "flannel-backend",
        "flannel-ipv6-masq",
        "flannel-external-ip",
        "egress-selector-mode",
        "servicelb-namespace",
        # client
        "write-kubeconfig",
        "write-kubeconfig-mode",
        "write-kubeconfig-group",
        # helm
        "helm-job-image",
        # cluster
        "token",
        "token-file",
        "agent-token",
        "agent-token-file",
        "server",
        "cluster-init",
        "cluster-reset",
        "cluster-reset-restore-path",
        # flags for the embedded processes
        "kube-apiserver-arg",
        "etcd-arg",
        "kube-controller-manager-arg",
        "kube-scheduler-arg",
        "kube-cloud-controller-manager-arg",
        # db
        "datastore-endpoint",
        "datastore-cafile",
        "datastore-certfile",
        "datastore-keyfile",
        "etcd-expose-metrics",
        "etcd-disable-snapshots",
        "etcd-snapshot-name",
        "etcd-snapshot-schedule-cron",
        "etcd-snapshot-retention",
        "etcd-snapshot-dir",
        "etcd-snapshot-compress",
        "etcd-s3",
        "etcd-s3-endpoint",
        "etcd-s3-endpoint-ca",
        "etcd-s3-skip-ssl-verify",
        "etcd-s3-access-key",
        "etcd-s3-secret-key",
        "etcd-s3-bucket",
        "etcd-s3-region",
        "etcd-s3-folder",
        "etcd-s3-proxy",
        "etcd-s3-config-secret",
        "etcd-s3-insecure",
        "etcd-s3-timeout",
        # storage
        "default-local-storage-path",
        # components
        "disable",
        "disable-scheduler",
        "disable-cloud-controller",
        "disable-kube-proxy",
        "disable-network-policy",
        "disable-helm-controller",
        "embedded-registry",
        "supervisor-metrics",
        # secrets encryption
        "secrets-encryption",
        "secrets-encryption-provider",
        # agent/node
        "node-name",
        "with-node-id",
        "node-label",
        "node-taint",
        "image-credential-provider-bin-dir",
        "image-credential-provider-config",
        "protect-kernel-defaults",
        "selinux",
        "lb-server-port",
        # agent/runtime
        "docker",
        "container-runtime-endpoint",
        "default-runtime",
        "image-service-endpoint",
        "disable-default-registry-endpoint",
        "nonroot-devices",
        "pause-image",
        "snapshotter",
        "private-registry",
        "system-default-registry",
        # agent/networking
        "node-ip",
        "node-external-ip",
        "node-internal-dns",
        "node-external-dns",
        "resolv-conf",
        "flannel-iface",
        "flannel-conf",
        "flannel-cni-conf",
        "vpn-auth",
        "vpn-auth-file",
        # agent/flags
        "kubelet-arg",
        "kube-proxy-arg",
        # experimental
        "enable-pprof",
        "rootless",
        "prefer-bundled-bin",
    }
)

BOOLEAN_FLAGS = frozenset(
    {
        "alsologtostderr",
        "cluster-init",
        "cluster-reset",
        "debug",
        "disable-cloud-controller",
        "disable-default-registry-endpoint",
        "disable-helm-controller",
        "disable-kube-proxy",
        "disable-network-policy",
        "disable-scheduler",
        "docker",
        "embedded-registry",
        "enable-pprof",
        "etcd-disable-snapshots",
        "etcd-expose-metrics",
        "etcd-s3",
        "etcd-s3-insecure",
        "etcd-s3-skip-ssl-verify",
        "etcd-snapshot-compress",
        "flannel-external-ip",
        "flannel-ipv6-masq",
        "nonroot-devices",
        "prefer-bundled-bin",
        "protect-kernel-defaults",
        "rootless",
        "secrets-encryption",
        "selinux",
        "supervisor-metrics",
        "tls-san-security",
        "with-node-id",
    }
)
"""Flags that take no value (written bare on a command line)."""

REPEATABLE_FLAGS = frozenset(
    {
        "disable",
        "etcd-arg",
        "kube-apiserver-arg",
        "kube-cloud-controller-manager-arg",
        "kube-controller-manager-arg",
        "kube-proxy-arg",
        "kube-scheduler-arg",
        "kubelet-arg",
        "node-external-ip",
        "node-ip",
        "node-label",
        "node-taint",
        "tls-san",
    }
)
"""Flags that may be given more than once (string slices in k3s)."""
