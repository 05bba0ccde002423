"""Schema revisions: the scripts build the models' schema, upgrades keep every row, a store at
another revision is refused, and `workbench db upgrade` / `db current`."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, MetaData, String, inspect, select, text

from tests.test_store import CALL, SUB, finished, make_record
from workbench import migrations
from workbench.cli import main
from workbench.errors import StoreError
from workbench.store import Base, Store, TransitionRow, open_engine, open_store

CODE_HEAD = migrations.HEAD  # before a test puts a newer revision on top
NEXT = "9999"
# A revision after the code's head, for these tests only: it alters `runs`, which SQLite
# does by copying the table while metrics and reproductions point at it.
NEXT_REVISION = f'''
import sqlalchemy as sa
from alembic import op

revision = "{NEXT}"
down_revision = "{CODE_HEAD}"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.alter_column(
            "energy_method",
            type_=sa.String(32),
            existing_type=sa.String(16),
            existing_nullable=True,
        )


def downgrade():
    pass
'''


@pytest.fixture
def next_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The package's scripts plus one newer revision; the code's head becomes that one."""
    scripts = tmp_path / "scripts"
    shutil.copytree(migrations.script_location(), scripts)
    (scripts / "versions" / "9999_test_next.py").write_text(NEXT_REVISION, encoding="utf-8")
    monkeypatch.setattr(migrations, "script_location", lambda: str(scripts))
    monkeypatch.setattr(migrations, "HEAD", NEXT)
    return NEXT


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """A fresh database on the session's throwaway PostgreSQL server."""
    import psycopg

    name = f"wb_{uuid.uuid4().hex[:12]}"
    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_database"))
    return f"sqlite:///{tmp_path / 'workbench.db'}"


def upgrade_to(url: str, revision: str) -> None:
    from alembic import command

    engine = open_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), revision)
    engine.dispose()


def fill(store: Store) -> None:
    """Runs with metrics, a reproduction, jurors with scores, transitions: through the API."""
    store.register(CALL, SUB)
    first = make_record(accuracy=0.5)
    store.add_run(finished(first))
    second = make_record()
    store.start_run(second)
    store.finish_run(
        finished(second).model_copy(update={"metrics": {"accuracy": 0.75, "rmse": 2.0}})
    )
    store.start_run(make_record())  # still running
    store.add_reproduction(
        {"submission": SUB.key, "reference_run_id": first.run_id, "verdict": "reproduced"}
    )
    ada = store.add_juror(CALL, "Ada", "a" * 64, [])
    bob = store.add_juror(CALL, "Bob", "b" * 64, [SUB.key])
    store.add_score(ada.id, SUB.key, {"benefit": 4}, "clear", 3.5)
    store.add_score(ada.id, SUB.key, {"benefit": 5}, "on second thought", 4.5)
    store.add_score(bob.id, SUB.key, {"benefit": 2}, "", 2.0)
    with store.session() as s:
        s.add(TransitionRow(submission_key=SUB.key, from_state="submitted", to_state="in_review",
                            actor="officer", reason=""))  # fmt: skip
        s.add(TransitionRow(submission_key=SUB.key, from_state="in_review", to_state="accepted",
                            actor="committee", reason="fundable"))  # fmt: skip


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the models, in primary-key order."""
    engine = open_engine(url)
    reflected = MetaData()
    present = set(inspect(engine).get_table_names())
    reflected.reflect(engine, only=[name for name in Base.metadata.tables if name in present])
    with engine.connect() as conn:
        rows = {
            name: [
                dict(row._mapping)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in reflected.tables.items()
        }
    engine.dispose()
    return rows


def test_the_codes_head_is_the_newest_script() -> None:
    assert migrations.script_head() == migrations.HEAD


def schema_differences(url: str, metadata: MetaData) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = open_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return list(diffs)


def test_the_revisions_build_the_models_schema(url: str) -> None:
    open_store(url).close()  # an empty store is brought to the head revision
    assert migrations.store_revision(url) == (migrations.HEAD, True)
    assert schema_differences(url, Base.metadata) == []
    # The comparison sees a model change that has no revision.
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["runs"].append_column(Column("note", String(32)))
    assert [diff[0] for diff in schema_differences(url, changed)] == ["add_column"]


def test_an_upgrade_keeps_every_row(url: str, next_revision: str) -> None:
    upgrade_to(url, CODE_HEAD)
    store = Store(open_engine(url))  # the code expects `next`: open_store would refuse
    fill(store)
    store.close()
    before = snapshot(url)
    assert {name: len(rows) for name, rows in before.items()} == {
        "calls": 1,
        "submissions": 1,
        "runs": 3,
        "metrics": 3,
        "reproductions": 1,
        "jurors": 2,
        "juror_tokens": 2,
        "scores": 3,
        "transitions": 2,
        "assignments": 0,
        "rapporteurs": 0,
        "syntheses": 0,
    }

    done = migrations.upgrade_store(url)

    assert (done.before, done.after, done.stamped) == (CODE_HEAD, next_revision, False)
    after = snapshot(url)
    assert {name: len(rows) for name, rows in after.items()} == {
        name: len(rows) for name, rows in before.items()
    }
    for name, rows in before.items():
        kept = [{column: row[column] for column in rows[0]} for row in after[name]]
        assert kept == rows, name
    assert all(row["note"] is None for row in after["runs"])
    with open_store(url) as store:  # now at the code's revision
        assert [run.status for run in store.runs()] == ["succeeded", "succeeded", "running"]
        assert store.jury_means(CALL.id) == {SUB.key: (2, 3.25)}


def test_an_older_store_is_refused_and_left_unchanged(
    workspace: Any, make_submission: Any, url: str, next_revision: str
) -> None:
    make_submission("team-a")
    upgrade_to(url, CODE_HEAD)
    before = snapshot(url)
    with pytest.raises(StoreError) as refused:
        open_store(url)
    shown = open_engine(url).url.render_as_string()
    assert str(refused.value) == (
        f"{shown}: the store's schema is at revision {CODE_HEAD}, the code needs {next_revision}: "
        "run `workbench db upgrade`"
    )
    # A command that would write says so in one line, and writes nothing.
    result = CliRunner().invoke(
        main, ["-w", str(workspace.root), "--db", url, "decide", "test-call/team-a", "accepted"]
    )
    assert result.exit_code == StoreError.exit_code
    assert result.stderr == f"error: {refused.value}\n"
    assert snapshot(url) == before
    assert migrations.store_revision(url) == (CODE_HEAD, True)


def test_a_newer_store_is_refused(url: str) -> None:
    open_store(url).close()
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '8888'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 8888, which this workbench does not know"):
        open_store(url)
    with pytest.raises(StoreError, match="a newer workbench wrote it"):
        migrations.upgrade_store(url)
    assert migrations.store_revision(url) == ("8888", True)


def make_legacy_store(url: str) -> None:
    """A store as the workbench made them before revisions existed: revision 0001's tables,
    filled, without `alembic_version`."""
    from alembic import command

    upgrade_to(url, CODE_HEAD)
    store = Store(open_engine(url))
    fill(store)
    store.close()
    engine = open_engine(url)
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


def test_jurors_links_made_at_revision_0001_still_open_after_the_upgrade(url: str) -> None:
    upgrade_to(url, "0001")
    store = Store(open_engine(url))
    store.register(CALL, SUB)
    store.close()
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jurors (call_id, name, token_sha256, conflicts, created_at) "
                "VALUES (:call, 'Ada', :token, '[]', CURRENT_TIMESTAMP)"
            ),
            {"call": CALL.id, "token": "a" * 64},
        )
    engine.dispose()

    migrations.upgrade_store(url)

    with open_store(url) as store:
        juror = store.juror_by_token("a" * 64)
        assert juror is not None and juror.name == "Ada"
        assert store.juror_by_token("b" * 64) is None


def test_a_store_from_before_revisions_is_stamped_then_upgraded(
    url: str, next_revision: str
) -> None:
    make_legacy_store(url)
    before = snapshot(url)
    with pytest.raises(StoreError, match=r"predates schema revisions.*`workbench db upgrade`"):
        open_store(url)
    runner = CliRunner()

    current = runner.invoke(main, ["db", "current", "--db", url])
    assert current.exit_code == 0, current.output
    assert "made before schema revisions" in current.stdout

    upgraded = runner.invoke(main, ["db", "upgrade", "--db", url])

    assert upgraded.exit_code == 0, upgraded.output
    shown = open_engine(url).url.render_as_string()
    assert upgraded.stdout == (
        f"{shown}: made before schema revisions, recognised as 0001\n"
        f"{shown}: upgraded from revision 0001 to {next_revision}\n"
    )
    after = snapshot(url)
    for name, rows in before.items():
        assert [{column: row[column] for column in rows[0]} for row in after[name]] == rows
    assert len(after["juror_tokens"]) == len(before["jurors"])  # old links still open
    open_store(url).close()


def test_a_store_from_before_revisions_with_other_tables_is_not_stamped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    make_legacy_store(url)
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE runs DROP COLUMN co2e_g"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"not those of revision 0001 \(table runs: missing"):
        migrations.upgrade_store(url)
    engine = open_engine(url)
    with engine.connect() as conn:
        assert not inspect(conn).has_table("alembic_version")
    engine.dispose()


def test_db_current_and_upgrade_on_a_new_store(tmp_path: Path) -> None:
    runner = CliRunner()
    workspace = ["-w", str(tmp_path)]  # the store URL comes from the workspace
    shown = f"sqlite:///{tmp_path / 'workbench.db'}"
    head = migrations.HEAD

    assert runner.invoke(main, [*workspace, "db", "current"]).stdout == (
        f"store: empty (the next command creates it)\ncode:  {head}\n"
    )
    assert runner.invoke(main, [*workspace, "db", "upgrade"]).stdout == (
        f"{shown}: created at revision {head}\n"
    )
    assert runner.invoke(main, [*workspace, "db", "current"]).stdout == (
        f"store: {head} (up to date)\ncode:  {head}\n"
    )
    assert runner.invoke(main, [*workspace, "db", "upgrade"]).stdout == (
        f"{shown}: already at revision {head}\n"
    )


def test_db_current_names_an_older_store(tmp_path: Path, next_revision: str) -> None:
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    upgrade_to(url, CODE_HEAD)
    result = CliRunner().invoke(main, ["db", "current", "--db", url])
    assert result.stdout == (
        f"store: {CODE_HEAD} (older than the code: run `workbench db upgrade`)\n"
        f"code:  {next_revision}\n"
    )


def test_several_first_opens_of_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Officials or workers opening a store nobody made yet: one creates it, none is refused.

    The race is narrow (between reading the revision and listing the tables), so the test
    opens several new stores, each by eight threads at once.
    """
    import threading

    failures: list[BaseException] = []
    for round_ in range(12):
        url = f"sqlite:///{tmp_path / f'new-{round_}.db'}"
        barrier = threading.Barrier(8)

        def first_open(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                open_store(url).close()
            except BaseException as exc:  # every failure is the test's finding
                failures.append(exc)

        threads = [threading.Thread(target=first_open) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert migrations.store_revision(url)[0] == migrations.HEAD
    assert failures == []
