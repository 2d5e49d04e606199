"""The cluster's certificates, admin credentials and kubeconfig files (DESIGN.md, "Data
directory": ``DATA_DIR/pki/`` and ``DATA_DIR/kubeconfig``).

Nothing here imports any other part of engenho.
"""

from engenho.pki.cluster import (
    ADMIN_GROUPS,
    ADMIN_USER,
    DEFAULT_HOSTS,
    ClusterPKI,
    ensure_pki,
    issue_client_certificate,
)
from engenho.pki.errors import (
    CertificateIdentityError,
    CorruptPKIError,
    InvalidHostError,
    KubeconfigError,
    PKIError,
)
from engenho.pki.identity import identity_from_certificate
from engenho.pki.kubeconfig import Kubeconfig, build_kubeconfig, write_kubeconfig

__all__ = [
    "ADMIN_GROUPS",
    "ADMIN_USER",
    "DEFAULT_HOSTS",
    "CertificateIdentityError",
    "ClusterPKI",
    "CorruptPKIError",
    "InvalidHostError",
    "Kubeconfig",
    "KubeconfigError",
    "PKIError",
    "build_kubeconfig",
    "ensure_pki",
    "identity_from_certificate",
    "issue_client_certificate",
    "write_kubeconfig",
]
