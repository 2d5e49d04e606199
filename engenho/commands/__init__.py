"""Subcommands of the ``engenho`` CLI, one module per group, each with ``register``."""

__all__: list[str] = []
