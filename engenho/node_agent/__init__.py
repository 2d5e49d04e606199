"""The node agent (kubelet): runs the pods bound to its node and reports their status.

Import what you need from its modules (``agent``, ``runtime``, ``runtimes.*``): the OCI
monitor and the wasm shim import parts of this package and must start fast.
"""

__all__: list[str] = []
