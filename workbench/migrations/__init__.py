"""The store's schema revisions, run with Alembic from this package (a wheel included).

`HEAD` is the code's revision; a test keeps it equal to the newest script in `versions/`, so
opening a store that is up to date reads one row of `alembic_version` and imports nothing.
Adding a revision: see "Migrations" in docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from workbench.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

HEAD = "0002"
FIRST = "0001"  # what a store made before revisions existed is, once its tables are checked
UPGRADE_HINT = "run `workbench db upgrade`"


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade_store` did: `before` is None for an empty store."""

    url: str
    before: str | None
    after: str
    stamped: bool  # a store from before revisions, recognised as the first revision


def script_location() -> str:
    # Alembic's config is an INI parser: a "%" in the path would be read as interpolation.
    return str(resources.files("workbench") / "migrations").replace("%", "%%")


def alembic_config(connection: Connection | None) -> Config:
    """Alembic's configuration for a connection the caller opened (and commits); None to
    read the scripts only."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location())
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None))


def script_head() -> str:
    """The newest revision among the scripts in `versions/`."""
    head = _scripts().get_current_head()
    if head is None:
        raise StoreError(f"{script_location()}: no schema revision found")
    return str(head)


def is_known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def read_revision(connection: Connection) -> str | None:
    """The store's revision; None when it has no `alembic_version` table or no row in it."""
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _workbench_tables(connection: Connection) -> set[str]:
    from sqlalchemy import inspect

    from workbench.tables import Base

    return set(inspect(connection).get_table_names()) & set(Base.metadata.tables)


def refusal(url: str, revision: str | None) -> StoreError:
    """Why the code cannot use a store at `revision` (None: a store from before revisions)."""
    if revision is None:
        return StoreError(
            f"{url}: the store predates schema revisions, the code needs {HEAD}: {UPGRADE_HINT}"
        )
    if is_known(revision):
        return StoreError(
            f"{url}: the store's schema is at revision {revision}, the code needs {HEAD}: "
            f"{UPGRADE_HINT}"
        )
    return StoreError(
        f"{url}: the store's schema is at revision {revision}, which this workbench does not "
        f"know (its newest is {HEAD}): a newer workbench wrote it; upgrade the workbench"
    )


def check_store(engine: Engine, url: str, *, create: bool) -> None:
    """Open-time check: a store at the code's revision passes; an empty one is created."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        revision = None  # no such table: an empty store, or one from before revisions
    if revision == HEAD:
        return
    if revision is None:
        # Read again, the revision and the tables in one transaction: another process may
        # have created the store since the first read (several first opens at once).
        with engine.connect() as conn, conn.begin():
            revision = read_revision(conn)
            empty = revision is None and not _workbench_tables(conn)
        if revision == HEAD:
            return
        if empty:
            if create:
                _run(engine, url, "head")
            return
    raise refusal(url, revision)


def _lock(connection: Connection) -> None:
    # Two first opens of an empty PostgreSQL store at once: the second waits, then finds
    # the first one's revision. SQLite's BEGIN IMMEDIATE already serialises writers.
    from sqlalchemy import text

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(4242424242)"))


def _pragma(connection: Connection, pragma: str) -> None:
    # Straight to the driver: through SQLAlchemy it would open a transaction first, and
    # SQLite ignores `foreign_keys` inside one.
    connection.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


def _run(engine: Engine, url: str, target: str, *, stamp: str | None = None) -> None:
    """Upgrade to `target` (after stamping `stamp`) in one transaction: all or nothing."""
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            # A revision that alters a SQLite table copies it, drops the old one and renames
            # the copy: with foreign keys on, the drop would fail (or cascade). They are
            # checked once the revisions ran, before the commit.
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                _pragma(conn, "foreign_keys=OFF")
            try:
                with conn.begin():
                    _lock(conn)
                    config = alembic_config(conn)
                    if stamp is not None:
                        command.stamp(config, stamp)
                    command.upgrade(config, target)
                    broken = (
                        conn.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
                    )
                    if broken:
                        raise StoreError(
                            f"{url}: the schema upgrade would break {len(broken)} reference(s) "
                            f"(first: table {broken[0][0]}), nothing was changed"
                        )
            finally:
                if sqlite:
                    _pragma(conn, "foreign_keys=ON")
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"{url}: the schema upgrade failed, nothing was changed: {exc}") from exc


def first_revision_tables() -> dict[str, set[str]]:
    """Each table revision 0001 creates and its columns, from a scratch in-memory database."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine("sqlite://")
    try:
        _run(engine, "sqlite://", FIRST)
        with engine.connect() as conn:
            inspector = inspect(conn)
            return {
                table: {column["name"] for column in inspector.get_columns(table)}
                for table in inspector.get_table_names()
                if table != "alembic_version"
            }
    finally:
        engine.dispose()


def _legacy_mismatch(connection: Connection) -> list[str]:
    from sqlalchemy import inspect

    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    problems = []
    for table, columns in sorted(first_revision_tables().items()):
        if table not in present:
            problems.append(f"table {table} is missing")
            continue
        found = {column["name"] for column in inspector.get_columns(table)}
        if found != columns:
            missing, extra = sorted(columns - found), sorted(found - columns)
            problems.append(f"table {table}: missing {missing}, unexpected {extra}")
    return problems


def upgrade_store(url: str) -> Upgrade:
    """Bring the store at `url` to the code's revision; a store from before revisions is
    checked against revision 0001 and stamped first. Nothing changes when it fails."""
    from sqlalchemy.exc import SQLAlchemyError

    from workbench.store import open_engine

    engine = open_engine(url)
    shown = engine.url.render_as_string()
    try:
        with engine.connect() as conn:
            before = read_revision(conn)
            legacy = before is None and bool(_workbench_tables(conn))
            problems = _legacy_mismatch(conn) if legacy else []
        if problems:
            raise StoreError(
                f"{shown}: the store predates schema revisions and its tables are not those "
                f"of revision {FIRST} ({'; '.join(problems)}): it cannot be upgraded"
            )
        if before is not None and not is_known(before):
            raise refusal(shown, before)
        if legacy or before != HEAD:
            _run(engine, shown, "head", stamp=FIRST if legacy else None)
        with engine.connect() as conn:
            after = read_revision(conn) or ""
    except SQLAlchemyError as exc:
        raise StoreError(f"{shown}: cannot open the store: {exc}") from exc
    finally:
        engine.dispose()
    return Upgrade(url=shown, before=FIRST if legacy else before, after=after, stamped=legacy)


def store_revision(url: str) -> tuple[str | None, bool]:
    """The revision of the store at `url` (None when it has none), and whether it holds
    the workbench's tables (False: an empty store)."""
    from sqlalchemy.exc import SQLAlchemyError

    from workbench.store import open_engine

    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return read_revision(conn), bool(_workbench_tables(conn))
    except SQLAlchemyError as exc:
        raise StoreError(f"{engine.url.render_as_string()}: cannot open the store: {exc}") from exc
    finally:
        engine.dispose()
