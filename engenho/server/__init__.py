"""Assembling and running one engenho node: log, projections, registry and the API."""

from engenho.server.bootstrap import SYSTEM_NAMESPACES, bootstrap
from engenho.server.options import RUNTIMES, ServerOptions, parse_listen
from engenho.server.running import ADMIN, run_server, serve

__all__ = [
    "ADMIN",
    "RUNTIMES",
    "SYSTEM_NAMESPACES",
    "ServerOptions",
    "bootstrap",
    "parse_listen",
    "run_server",
    "serve",
]
