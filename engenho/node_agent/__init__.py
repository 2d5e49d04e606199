"""The node agent (kubelet): runs the pods bound to its node and reports their status."""
