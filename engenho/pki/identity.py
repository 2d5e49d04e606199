"""Who a verified client certificate speaks for, read the way upstream's x509 authenticator
reads it (``CommonNameUserConversion``): the subject's common name is the user, and every
organization is a group, in order."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from engenho.pki.errors import CertificateIdentityError

__all__ = ["identity_from_certificate"]


def identity_from_certificate(der: bytes) -> tuple[str, tuple[str, ...]]:
    """``(user, groups)`` of a DER certificate whose chain the TLS layer already verified.

    Raises :class:`CertificateIdentityError` for bytes that are not a certificate and for a
    certificate without a common name, which upstream does not authenticate.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateIdentityError(f"not a DER certificate: {exc}") from exc
    subject = certificate.subject
    # Go's pkix.Name keeps the last common name when there are several; so do we.
    names = [_text(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    user = names[-1] if names else ""
    if not user:
        raise CertificateIdentityError("the client certificate has no common name (user)")
    groups = tuple(
        _text(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    )
    return user, groups


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
