"""Alembic's environment for the store: always run from `workbench.migrations`.

The caller opens the connection and passes it in `config.attributes["connection"]`, so the
store's own engine (its SQLite pragmas, its driver) runs the migrations, from a wheel too.
"""

from __future__ import annotations

from alembic import context

from workbench.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters a table by copying it: batch mode does that in later revisions.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
