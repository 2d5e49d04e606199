"""Container runtimes behind ``engenho.node_agent.runtime.ContainerRuntime``: ``fake``
(timetables, no processes), ``oci`` (crun) and ``wasm`` (wasmtime), the last two built on
``shim_runtime``. Import them from their modules (``runtimes.fake``, ``runtimes.oci``,
``runtimes.wasm``): this package stays empty so that the shim processes, which live here
(``oci_shim``, ``wasm_shim``), start without importing the rest."""

__all__: list[str] = []
