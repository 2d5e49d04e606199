"""The cluster's certificates, admin credentials, service account signing key and kubeconfig
files (DESIGN.md, "Data directory": ``DATA_DIR/pki/`` and ``DATA_DIR/kubeconfig``).

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
    ServiceAccountTokenError,
)
from engenho.pki.identity import identity_from_certificate
from engenho.pki.kubeconfig import Kubeconfig, build_kubeconfig, write_kubeconfig
from engenho.pki.service_accounts import (
    DEFAULT_ISSUER,
    LEGACY_ISSUER,
    BoundObject,
    ServiceAccountKey,
    ServiceAccountTokens,
    TokenClaims,
    ensure_service_account_key,
)

__all__ = [
    "ADMIN_GROUPS",
    "ADMIN_USER",
    "DEFAULT_HOSTS",
    "DEFAULT_ISSUER",
    "LEGACY_ISSUER",
    "BoundObject",
    "CertificateIdentityError",
    "ClusterPKI",
    "CorruptPKIError",
    "InvalidHostError",
    "Kubeconfig",
    "KubeconfigError",
    "PKIError",
    "ServiceAccountKey",
    "ServiceAccountTokenError",
    "ServiceAccountTokens",
    "TokenClaims",
    "build_kubeconfig",
    "ensure_pki",
    "ensure_service_account_key",
    "identity_from_certificate",
    "issue_client_certificate",
    "write_kubeconfig",
]
