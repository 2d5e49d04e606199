"""Server-side printing: the ``meta.k8s.io/v1 Table`` that ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the columns
and cells the server chooses. The columns and cell rules here are those of upstream's printers
(``kubernetes/kubernetes`` ``pkg/printers/internalversion/printers.go``), so ``kubectl get``
shows the same thing against engenho as against Kubernetes. Everything is a pure function of
the objects and the time of the response; nothing here does I/O.
"""

from engenho.api.printing.age import human_duration
from engenho.api.printing.columns import ColumnDefinition
from engenho.api.printing.errors import InvalidIncludeObjectError, PrintingError
from engenho.api.printing.table import INCLUDE_OBJECT_MODES, column_definitions, table

__all__ = [
    "INCLUDE_OBJECT_MODES",
    "ColumnDefinition",
    "InvalidIncludeObjectError",
    "PrintingError",
    "column_definitions",
    "human_duration",
    "table",
]
