"""The Kubernetes REST API over HTTPS: what kubectl and client libraries talk to.

It authenticates, decodes and negotiates; everything about objects is the registry's.
"""

from engenho.api.app import build_app
from engenho.api.auth import Authenticator
from engenho.api.health import Check, Health, version_info
from engenho.api.metrics import Metrics
from engenho.api.proxying import NodeAgents
from engenho.api.service_accounts import ServiceAccountAuthenticator
from engenho.api.spdy_exec import SpdyExec
from engenho.api.tls import ClientCertProtocol
from engenho.api.upgrading import spdy_upgrading

__all__ = [
    "Authenticator",
    "Check",
    "ClientCertProtocol",
    "Health",
    "Metrics",
    "NodeAgents",
    "ServiceAccountAuthenticator",
    "SpdyExec",
    "build_app",
    "spdy_upgrading",
    "version_info",
]
