"""engenho: a Kubernetes-compatible control plane and node agent on an attested log."""

__all__ = ["__version__"]

__version__ = "0.1.0"
