"""Name, label and key syntax, with apimachinery's exact messages (``util/validation``).

Each ``*_errors`` function returns the list of messages for one value (empty when valid),
mirroring upstream's ``IsDNS1123Label`` and friends, so callers attach them as
``Invalid value`` causes at the field they are checking.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

__all__ = [
    "NameCheck",
    "config_key_errors",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "env_var_name_errors",
    "iana_svc_name_errors",
    "label_value_errors",
    "path_segment_errors",
    "qualified_name_errors",
]

NameCheck = Callable[[str], Sequence[str]]
_cached = functools.lru_cache(maxsize=8192)

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL_FMT)
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_LABEL_FMT}')"
)
_SUBDOMAIN_FMT = _LABEL_FMT + r"(\." + _LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN = re.compile(_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_SUBDOMAIN_FMT}')"
)
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL = re.compile(_DNS1035_FMT)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{_DNS1035_FMT}')"
)
_QUALIFIED_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED = re.compile(_QUALIFIED_FMT)
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QUALIFIED_FMT}')"
)
_LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE_FMT}')"
)
_ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR = re.compile(_ENV_VAR_FMT)
_ENV_VAR_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
    "'-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    f"'MyEnvName1', regex used for validation is '{_ENV_VAR_FMT}')"
)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY = re.compile(_CONFIG_KEY_FMT)
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    f"'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY_FMT}')"
)
_IANA_SVC = re.compile("[-a-z0-9]+")
_HAS_LETTER = re.compile("[a-z]")


def _max_length(limit: int) -> str:
    return f"must be no more than {limit} characters"


@_cached
def dns1123_label_errors(value: str) -> tuple[str, ...]:
    errors = []
    if len(value) > 63:
        errors.append(_max_length(63))
    if _DNS1123_LABEL.fullmatch(value) is None:
        errors.append(_DNS1123_LABEL_MSG)
    return tuple(errors)


@_cached
def dns1123_subdomain_errors(value: str) -> tuple[str, ...]:
    errors = []
    if len(value) > 253:
        errors.append(_max_length(253))
    if _DNS1123_SUBDOMAIN.fullmatch(value) is None:
        errors.append(_DNS1123_SUBDOMAIN_MSG)
    return tuple(errors)


@_cached
def dns1035_label_errors(value: str) -> tuple[str, ...]:
    errors = []
    if len(value) > 63:
        errors.append(_max_length(63))
    if _DNS1035_LABEL.fullmatch(value) is None:
        errors.append(_DNS1035_MSG)
    return tuple(errors)


@_cached
def qualified_name_errors(value: str) -> tuple[str, ...]:
    """Label and annotation keys: ``[prefix/]name`` with a DNS-subdomain prefix."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        errors: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        errors = []
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + msg for msg in dns1123_subdomain_errors(prefix))
    else:
        return (
            "a qualified name " + _QUALIFIED_MSG + " with an optional DNS subdomain prefix and "
            "'/' (e.g. 'example.com/MyName')",
        )
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + _max_length(63))
    if name and _QUALIFIED.fullmatch(name) is None:
        errors.append("name part " + _QUALIFIED_MSG)
    return tuple(errors)


@_cached
def label_value_errors(value: str) -> tuple[str, ...]:
    errors = []
    if len(value) > 63:
        errors.append(_max_length(63))
    if _LABEL_VALUE.fullmatch(value) is None:
        errors.append(_LABEL_VALUE_MSG)
    return tuple(errors)


@_cached
def iana_svc_name_errors(value: str) -> tuple[str, ...]:
    """Named ports: at most 15 lowercase alphanumerics and single hyphens, one letter."""
    errors = []
    if len(value) > 15:
        errors.append(_max_length(15))
    if _IANA_SVC.fullmatch(value) is None:
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if _HAS_LETTER.search(value) is None:
        errors.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return tuple(errors)


@_cached
def env_var_name_errors(value: str) -> tuple[str, ...]:
    return () if _ENV_VAR.fullmatch(value) else (_ENV_VAR_MSG,)


@_cached
def config_key_errors(value: str) -> tuple[str, ...]:
    """Keys of ConfigMap and Secret data."""
    errors = []
    if len(value) > 253:
        errors.append(_max_length(253))
    if _CONFIG_KEY.fullmatch(value) is None:
        errors.append(_CONFIG_KEY_MSG)
    if value == ".":
        errors.append("must not be '.'")
    elif value == "..":
        errors.append("must not be '..'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return tuple(errors)


@_cached
def path_segment_errors(value: str) -> tuple[str, ...]:
    """Names that end up as one URL path segment (RBAC objects)."""
    if value in (".", ".."):
        return (f"may not be '{value}'",)
    return tuple(f"may not contain '{ch}'" for ch in ("/", "%") if ch in value)
