"""engenho.pki exports exactly its public surface."""

from __future__ import annotations

import engenho.pki


def test_pki_surface() -> None:
    assert set(engenho.pki.__all__) == {
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
    }
