"""Name and text formats: DNS-1123 names, Go durations, Kubernetes quantities, git refs and
repository-relative paths. Each check returns a message, or None when the text is well formed."""

from __future__ import annotations

import re
from ipaddress import ip_address

__all__ = [
    "dns_label_problem",
    "dns_subdomain_problem",
    "git_ref_problem",
    "go_duration_problem",
    "host_problem",
    "quantity_problem",
    "repository_path_problem",
]

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
_QUANTITY = re.compile(
    r"(?P<number>\+?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?"
)
_REF = re.compile(r"[A-Za-z0-9._/@+-]+")


def dns_label_problem(text: str) -> str | None:
    """RFC 1123 label, as Kubernetes checks names such as a Namespace's."""
    if not text:
        return "must not be empty"
    if len(text) > 63:
        return f"{text!r} is longer than 63 characters"
    if not _LABEL.fullmatch(text):
        return (
            f"{text!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def dns_subdomain_problem(text: str) -> str | None:
    """RFC 1123 subdomain, as Kubernetes checks most object names (Nodes, Secrets, ...)."""
    if not text:
        return "must not be empty"
    if len(text) > 253:
        return f"{text!r} is longer than 253 characters"
    if not all(_LABEL.fullmatch(part) for part in text.split(".")):
        return (
            f"{text!r} is not a DNS-1123 subdomain (dot-separated labels of lowercase letters, "
            "digits and '-')"
        )
    return None


def host_problem(text: str) -> str | None:
    """A DNS name or an IP address, as a certificate's subject alternative name."""
    try:
        ip_address(text)
    except ValueError:
        return dns_subdomain_problem(text)
    return None


def go_duration_problem(text: str) -> str | None:
    """A positive Go ``time.Duration`` (``30s``, ``1m``, ``1h30m``), which Flux reads."""
    if not _DURATION.fullmatch(text):
        return f"{text!r} is not a duration such as 30s, 10m or 1h30m"
    if not re.search(r"[1-9]", text):
        return f"{text!r} must be longer than zero"
    return None


def quantity_problem(text: str) -> str | None:
    """A positive Kubernetes quantity (``4``, ``500m``, ``8Gi``)."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return f"{text!r} is not a Kubernetes quantity such as 500m, 4 or 8Gi"
    if float(match["number"]) <= 0:
        return f"{text!r} must be greater than zero"
    return None


def git_ref_problem(text: str) -> str | None:
    """A branch, tag or commit as git accepts them (a practical subset of check-ref-format)."""
    if not text:
        return "must not be empty"
    if not _REF.fullmatch(text):
        return f"{text!r} is not a git ref (letters, digits and . _ / @ + - only)"
    if text.startswith(("-", "/", ".")) or text.endswith(("/", ".", ".lock")):
        return f"{text!r} is not a git ref (bad first or last character)"
    if ".." in text or "//" in text or "@{" in text:
        return f"{text!r} is not a git ref ('..' and '//' are not allowed)"
    return None


def repository_path_problem(text: str) -> str | None:
    """A directory inside the repository: relative, never climbing out with ``..``."""
    if not text:
        return "must not be empty"
    if text.startswith("/"):
        return f"{text!r} must be relative to the repository root (./clusters/x)"
    if ".." in text.split("/"):
        return f"{text!r} must not leave the repository with '..'"
    if any(c.isspace() for c in text):
        return f"{text!r} must not contain whitespace"
    return None
