"""Container runtimes behind ``engenho.node_agent.runtime.ContainerRuntime``: ``fake``
(timetables, no processes) and ``oci`` (crun). Import them from their modules
(``runtimes.fake``, ``runtimes.oci``): this package stays empty so that the OCI runtime's
monitor process, which lives here, starts without importing the rest."""

__all__: list[str] = []
