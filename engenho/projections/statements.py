"""Hot-path statements, compiled once per dialect and run with plain tuples.

The applier runs a handful of statements per batch, each with many rows. SQLAlchemy's
per-row parameter processing costs several microseconds a row (more than SQLite takes to
insert it) and its per-statement work about a tenth of a millisecond; the values here need no
conversion (ints, str, bytes), so the applier hands the driver compiled SQL and its rows
directly, and point reads do the same. The SQL still comes from the portable Core
statements below.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen
from sqlalchemy import ClauseElement, Dialect, bindparam, insert, select, update
from sqlalchemy.sql.compiler import SQLCompiler

from engenho.projections.tables import OBJECT_VERSIONS as V
from engenho.projections.tables import PROJECTION_STATE as S

__all__ = [
    "INSERT_COLUMNS",
    "ITEM_COLUMNS",
    "PRIOR_COLUMNS",
    "DriverStatement",
    "Statements",
    "statements",
]

INSERT_COLUMNS = tuple(c.name for c in V.columns)
"""The order of the values of an inserted row."""

ITEM_COLUMNS = (V.c.valid_from, V.c.namespace, V.c.name, V.c.uid, V.c.data)
"""What a read returns per object (group and resource are known from the request)."""

PRIOR_COLUMNS = (
    V.c.key,
    V.c.api_group,
    V.c.resource,
    V.c.namespace,
    V.c.name,
    V.c.uid,
    V.c.valid_from,
    V.c.data,
)


@frozen
class DriverStatement:
    """Compiled SQL and the order its parameters take."""

    sql: str
    order: tuple[str, ...] | None
    """Parameter names in positional order, or ``None`` for a named paramstyle."""

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        positional = compiled.positional and compiled.positiontup is not None
        return cls(str(compiled), tuple(compiled.positiontup or ()) if positional else None)

    def parameters(self, names: tuple[str, ...], row: tuple[Any, ...]) -> Any:
        """One row's parameters, given as ``row`` in the order of ``names``."""
        if self.order is None:
            return dict(zip(names, row, strict=True))
        if self.order == names:
            return row
        return tuple(row[names.index(name)] for name in self.order)

    def many(self, names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[Any]:
        if self.order == names:
            return rows
        return [self.parameters(names, row) for row in rows]


class Statements:
    """The hot-path statements for one dialect."""

    CLOSE_NAMES = ("b_from", "b_to")
    META_NAMES = ("b_index", "b_hash", "b_id")
    CURRENT_NAMES = ("b_key",)

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self.close = DriverStatement.compile(
            update(V)
            .where(V.c.valid_from == bindparam("b_from"))
            .values(valid_to=bindparam("b_to")),
            dialect,
        )
        self.insert = DriverStatement.compile(
            insert(V).values({name: bindparam(name) for name in INSERT_COLUMNS}), dialect
        )
        self.meta = DriverStatement.compile(
            update(S)
            .where(S.c.id == bindparam("b_id"))
            .values(applied_index=bindparam("b_index"), applied_hash=bindparam("b_hash")),
            dialect,
        )
        self.current = DriverStatement.compile(
            select(*ITEM_COLUMNS).where(V.c.key == bindparam("b_key"), V.c.valid_to.is_(None)),
            dialect,
        )
        self._priors: dict[int, tuple[DriverStatement, tuple[str, ...]]] = {}

    def priors(self, count: int) -> tuple[DriverStatement, tuple[str, ...]]:
        """The current-versions query for up to ``count`` keys, and its parameter names.

        Compiled for a power of two at least ``count``; callers pad the keys by repeating
        the last one, so a handful of variants serve every batch.
        """
        size = 1 << max(count - 1, 0).bit_length()
        found = self._priors.get(size)
        if found is None:
            names = tuple(f"k{i}" for i in range(size))
            query = select(*PRIOR_COLUMNS).where(
                V.c.valid_to.is_(None), V.c.key.in_([bindparam(n) for n in names])
            )
            found = (DriverStatement.compile(query, self._dialect), names)
            self._priors[size] = found
        return found


_by_dialect: dict[str, Statements] = {}


def statements(dialect: Dialect) -> Statements:
    found = _by_dialect.get(dialect.name)
    if found is None:
        found = _by_dialect[dialect.name] = Statements(dialect)
    return found
