"""Every engenho module declares a sorted ``__all__`` naming things it really has, and the
log package exports exactly its public surface."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import engenho
import engenho.log

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(engenho.__path__, "engenho.")
    if ".generated" not in m.name and not m.name.endswith("__main__")
)


def isort_style(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions: the order ruff's RUF022 keeps."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_real(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported, key=isort_style), f"{name}.__all__ is not sorted"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"


def test_log_surface() -> None:
    assert set(engenho.log.__all__) == {
        "COMMAND_SCHEMA_VERSION",
        "ENTRY_TAG",
        "GENESIS_HASH",
        "Actor",
        "CommittedTruncationError",
        "CorruptLogError",
        "EncodingError",
        "Entry",
        "IndexOutOfRangeError",
        "JsonValue",
        "LogClosedError",
        "LogError",
        "LogFailedError",
        "LogLockedError",
        "LogOptions",
        "LogStats",
        "LogStore",
        "LogUnavailableError",
        "Precondition",
        "ResourceCommand",
        "ResourceKey",
        "Verb",
        "VerifyFailure",
        "VerifyReport",
        "canonical_json",
        "decode_command",
        "encode_command",
        "entry_hash",
        "seal_payload",
        "verify_log",
    }
