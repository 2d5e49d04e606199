"""Alembic environment for the projection schema.

engenho runs the migrations itself when projections open (``engenho.projections.migrating``)
and hands over its own connection in ``config.attributes["connection"]``, already inside a
transaction, so a migration is all-or-nothing on SQLite and PostgreSQL alike. From the
command line, pass a synchronous URL: ``alembic -c migrations/alembic.ini -x url=... upgrade
head``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if context.is_offline_mode():
        context.configure(url=context.get_x_argument(as_dictionary=True)["url"])
        with context.begin_transaction():
            context.run_migrations()
        return
    if connection is not None:
        context.configure(connection=connection, render_as_batch=True, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])
    with engine.begin() as own:
        context.configure(connection=own, render_as_batch=True, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
