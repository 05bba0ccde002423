"""The store: append-only runs, SQLite in WAL mode under concurrent writers, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workbench.calls import load_call
from workbench.errors import InputError, StoreError
from workbench.runner.records import Fingerprint, RunRecord, new_run_id
from workbench.store import MetricRow, RunRow, Store, open_store
from workbench.submissions import load_submission

CALL = load_call(ROOT / "calls" / "diat.yaml")
SUB = load_submission(next((ROOT / "submissions" / "diat").iterdir()))


def make_record(status: str = "running", **metrics: float) -> RunRecord:
    return RunRecord(
        run_id=new_run_id(),
        submission=SUB.key,
        call=CALL.id,
        status=status,  # type: ignore[arg-type]
        started_at=dt.datetime.now(dt.UTC),
        fingerprint=Fingerprint(
            notebook_sha256="a" * 64,
            parameters_sha256="b" * 64,
            python="3.11.7",
            packages_sha256="c" * 64,
            kernel="python3",
        ),
        isolation="process",
        notebook="runs/x/notebook.ipynb",
        run_dir="runs/x",
        metrics=metrics,
    )


def finished(record: RunRecord, status: str = "succeeded") -> RunRecord:
    return record.model_copy(
        update={"status": status, "finished_at": dt.datetime.now(dt.UTC), "duration_s": 1.0}
    )


def exercise(store: Store) -> None:
    """The store's contract, run against every backend."""
    store.register(CALL, SUB)
    store.register(CALL, SUB)  # registering again refreshes, it does not duplicate
    first = make_record()
    store.start_run(first)
    store.finish_run(finished(first.model_copy(update={"metrics": {"ai.mae": 1.5}})))
    with pytest.raises(StoreError, match="never rewritten"):
        store.finish_run(finished(first, "failed"))
    with pytest.raises(StoreError, match="already exists"):
        store.start_run(first)
    second = make_record()
    store.start_run(second)
    ((_, latest),) = store.latest_runs(CALL.id)
    assert latest is not None and latest.run_id == second.run_id and latest.status == "running"
    store.finish_run(finished(second, "failed"))
    runs = store.runs(SUB.key)
    assert [(r.run_id, r.status) for r in runs] == [
        (first.run_id, "succeeded"),
        (second.run_id, "failed"),
    ]
    assert {m.name: m.value for m in runs[0].metrics} == {"ai.mae": 1.5}
    assert store.count(MetricRow) == 1
    sub = store.submission(SUB.key)
    assert sub is not None and sub.title == SUB.title and store.submission("nope/x") is None
    assert store.submission_keys(CALL.id) == {SUB.key}
    assert [(e.run_id, e.energy_kwh) for e in store.run_energies(CALL.id)] == [
        (first.run_id, None),  # not measured: no energy in these records
        (second.run_id, None),
    ]
    exercise_transitions(store)


def exercise_transitions(store: Store) -> None:
    """Transitions are appended after a check that sees the latest state, in one transaction."""
    seen: list[str] = []

    def check(from_state: str) -> None:
        seen.append(from_state)
        if from_state == "in_review":
            raise InputError("refused")

    assert store.current_state(SUB.key) is None
    first = store.append_transition(
        SUB.key, "in_review", actor="a", reason="", declared="submitted", check=check
    )
    assert (first.from_state, first.to_state, first.actor) == ("submitted", "in_review", "a")
    with pytest.raises(InputError, match="refused"):
        store.append_transition(
            SUB.key, "accepted", actor="b", reason="", declared="submitted", check=check
        )
    assert seen == ["submitted", "in_review"]
    assert store.current_state(SUB.key) == "in_review"
    assert store.transitions(CALL.id) == store.transitions(submission_key=SUB.key) == [first]
    with pytest.raises(StoreError, match="not registered"):
        store.append_transition(
            "nope/x", "in_review", actor="a", reason="", declared="submitted", check=check
        )


def test_sqlite_store_contract(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        exercise(store)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.close()


def test_the_store_as_a_context_manager_disposes_of_its_engine(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.register(CALL, SUB)
        assert store.engine.pool.checkedin() == 1  # one pooled connection, back in the pool
    assert store.engine.pool.checkedin() == 0  # disposed on leaving the block


def test_cannot_finish_as_running(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    store.register(CALL, SUB)
    record = make_record()
    store.start_run(record)
    with pytest.raises(StoreError, match="cannot finish"):
        store.finish_run(record)
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    setup = open_store(url)
    setup.register(CALL, SUB)
    setup.close()
    errors: list[BaseException] = []

    def writer() -> None:
        store = open_store(url)
        try:
            for _ in range(15):
                record = make_record()
                store.start_run(record)
                store.finish_run(finished(record.model_copy(update={"metrics": {"m": 1.0}})))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = open_store(url)
    assert store.count(RunRow) == 60
    assert store.count(MetricRow) == 60
    store.close()


def test_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


@pytest.mark.postgres
def test_postgresql_store_contract(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        exercise(store)
    finally:
        store.close()
