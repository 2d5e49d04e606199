"""The file tier: which configuration file is read, and reading it.

The first found of: ``--config FILE``, ``$ENGENHO_CONFIG``, ``$XDG_CONFIG_HOME/engenho/
engenho.yaml`` (``~/.config`` when unset), ``/etc/engenho/engenho.yaml``. A file named
explicitly (flag or variable) must exist; the two conventional places are used when present.
Only one file is read: files do not merge with each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from attrs import frozen

from engenho.config.defaults import SYSTEM_CONFIG_FILE, default_config_home
from engenho.config.environment import CONFIG_FILE_VARIABLE
from engenho.config.errors import ConfigFileError
from engenho.config.yamlio import load_yaml

__all__ = ["ConfigFile", "locate_config_file", "read_config_file"]


@frozen
class ConfigFile:
    path: Path
    chosen_by: str
    """``--config``, ``$ENGENHO_CONFIG``, ``$XDG_CONFIG_HOME`` or ``system``."""


def locate_config_file(
    explicit: Path | None,
    env: Mapping[str, str],
    system_file: Path = SYSTEM_CONFIG_FILE,
) -> ConfigFile | None:
    if explicit is not None:
        return _must_exist(ConfigFile(explicit, "--config"))
    if env.get(CONFIG_FILE_VARIABLE):
        return _must_exist(ConfigFile(Path(env[CONFIG_FILE_VARIABLE]), f"${CONFIG_FILE_VARIABLE}"))
    user_file = default_config_home(env) / "engenho" / "engenho.yaml"
    for candidate in (ConfigFile(user_file, "$XDG_CONFIG_HOME"), ConfigFile(system_file, "system")):
        if candidate.path.is_file():
            return candidate
    return None


def read_config_file(file: ConfigFile) -> object:
    """The file's YAML document; an empty file is an empty mapping."""
    try:
        text = file.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{file.path}: {exc.strerror or exc}") from exc
    document = load_yaml(text, str(file.path))
    return {} if document is None else document


def _must_exist(file: ConfigFile) -> ConfigFile:
    if not file.path.is_file():
        raise ConfigFileError(f"{file.path} (from {file.chosen_by}): no such file")
    return file
