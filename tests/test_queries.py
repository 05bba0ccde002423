"""No N+1 queries: what the CLI, the dashboards and the report read costs the same number of
statements for a call of 5 submissions as for one of 50."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import TEST_CALL, write_yaml
from workbench import dossiers, jury, usage
from workbench.results import call_results
from workbench.runner.metering import Energy, MachineInfo
from workbench.runner.records import Fingerprint, RunRecord, RunScore, new_run_id
from workbench.store import Store, open_store
from workbench.submissions import Submission
from workbench.workspace import Workspace

MACHINE = MachineInfo(
    method="load-estimate",
    cpu_model="cpu",
    cpu_count=2,
    ram_gb=8.0,
    architecture="x86_64",
    measured_by="t",
)
FINGERPRINT = Fingerprint(
    notebook_sha256="a" * 64,
    parameters_sha256="b" * 64,
    python="3.11",
    packages_sha256="c" * 64,
    kernel="k",
)


def _record(key: str, index: int, status: str = "succeeded") -> RunRecord:
    kwh = 0.001 * (index + 1)
    now = dt.datetime.now(dt.UTC)
    return RunRecord(
        run_id=new_run_id(),
        submission=key,
        call="test-call",
        status=status,  # type: ignore[arg-type]
        started_at=now,
        finished_at=now,
        duration_s=1.0,
        metrics={"ai.mae": 5.0 + index, "baseline.mae": 10.0, "n_predictions": 100.0},
        score=RunScore(
            metric="mae",
            direction="lower",
            ai=5.0 + index,
            baseline=10.0,
            gain_vs_baseline=(5.0 - index) / 10.0,
            disagrees=False,
        ),
        energy=Energy(
            measured=True,
            total_kwh=kwh,
            phases={"train": kwh},
            cpu_kwh=kwh,
            ram_kwh=0.0,
            co2e_g=kwh * 56.0,
            method="load-estimate",
            machine=MACHINE,
            machine_fingerprint=MACHINE.fingerprint,
            country_iso_code="FRA",
            pue=1.0,
        ),
        fingerprint=FINGERPRINT,
        isolation="process",
        notebook="n.ipynb",
        run_dir="r",
    )


def _allow_any(_from_state: str) -> None:
    """A check that lets every transition through: the lifecycle is tested elsewhere."""


def build(root: Path, n: int) -> Workspace:
    """A workspace whose call has `n` submissions, each with two runs (the first rerun), two
    jurors' scores (one saved twice), a reproduction and two transitions; through the store's
    API only, no kernel."""
    write_yaml(root / "calls" / "test-call.yaml", TEST_CALL)
    workspace = Workspace(root)
    call = workspace.call("test-call")
    with open_store(workspace.db_url) as store:
        ann = store.add_juror(call, "Ann", "1" * 64, [])
        bob = store.add_juror(call, "Bob", "2" * 64, ["test-call/team-0"])
        for i in range(n):
            sub = Submission(
                id=f"team-{i}",
                call="test-call",
                team=f"Team {i}",
                organisation="Org",
                title=f"Project {i}",
                template="ok",
                state="submitted",
            )
            store.register(call, sub)
            for status in ("failed", "succeeded"):
                record = _record(sub.key, i, status)
                store.start_run(record.model_copy(update={"status": "running"}))
                store.finish_run(record)
            store.add_reproduction(
                {
                    "submission": sub.key,
                    "reference_run_id": record.run_id,
                    "run_ids": [],
                    "verdict": "reproduced",
                    "differences": [],
                }
            )
            values = {"benefit": 3.0, "frugality": 4.0}
            store.add_score(ann.id, sub.key, values, "", 50.0)
            store.add_score(ann.id, sub.key, values, "again", 60.0)
            store.add_score(bob.id, sub.key, values, "", 40.0 + i)
            for to_state in ("in_review", "accepted"):
                store.append_transition(
                    sub.key,
                    to_state,
                    actor="Lou",
                    reason="",
                    declared=sub.state or "draft",
                    check=_allow_any,
                )
    return workspace


@contextmanager
def counting(target: Engine | type[Engine]) -> Iterator[list[str]]:
    """The SQL statements run on `target` (an engine, or every engine) inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(target, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(target, "before_cursor_execute", count)


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Workspace]:
    """A call of 5 submissions and one of 50, in two workspaces."""
    return {n: build(tmp_path_factory.mktemp(f"call-{n}"), n) for n in (5, 50)}


def _statements(workspace: Workspace, read: Callable[[Store], Any]) -> tuple[int, Any]:
    with open_store(workspace.db_url) as store:
        read(store)  # warm up: the first query of a fresh engine can load more
        with counting(store.engine) as statements:
            value = read(store)
    return len(statements), value


# Each read, and how much of the call it returns (so a read that skipped rows would show).
READS: dict[str, tuple[Callable[[Store], Any], Callable[[Any], int]]] = {
    "call_results": (lambda store: call_results(store, "test-call"), len),
    "store_progress": (
        lambda store: jury.store_progress(store, "test-call"),
        lambda result: sum(p.saves for p in result) // 3,
    ),
    "current_scores": (lambda store: jury.current_scores(store, "test-call"), len),
    "call_usage": (
        lambda store: usage.call_usage(store, "test-call"),
        lambda result: result["runs"] // 2,
    ),
    "transitions": (lambda store: store.transitions("test-call"), lambda log: len(log) // 2),
}


@pytest.mark.parametrize("name", READS)
def test_statements_do_not_grow_with_submissions(calls: dict[int, Workspace], name: str) -> None:
    read, size = READS[name]
    small, small_value = _statements(calls[5], read)
    large, large_value = _statements(calls[50], read)
    assert (size(small_value), size(large_value)) == (5, 50)
    assert small > 0
    assert small == large, f"{name}: {small} statements for 5 submissions, {large} for 50"


def test_history_of_one_submission_is_one_query(calls: dict[int, Workspace]) -> None:
    for workspace in calls.values():
        count, log = _statements(
            workspace, lambda store: dossiers.history(store, "test-call/team-1")
        )
        assert count == 2  # BEGIN IMMEDIATE, SELECT
        assert [t.to_state for t in log] == ["in_review", "accepted"]
        count, state = _statements(
            workspace, lambda store: dossiers.current_state(store, "test-call/team-1", "draft")
        )
        assert (count, state) == (2, "accepted")


def test_call_results_is_five_statements_and_reads_everything(
    calls: dict[int, Workspace],
) -> None:
    count, rows = _statements(calls[50], lambda store: call_results(store, "test-call"))
    # latest runs, their metrics (one selectin load), reproductions, states, scores;
    # each in its own short transaction, which SQLite opens with BEGIN IMMEDIATE.
    assert count == 2 * 4 + 1
    by_key = {row.submission: row for row in rows}
    seven = by_key["test-call/team-7"]
    assert seven.status == "succeeded" and seven.metrics["ai.mae"] == 12.0
    assert seven.state == "accepted" and seven.verdict == "reproduced"
    assert (seven.jurors, seven.jury_score) == (2, pytest.approx((60.0 + 47.0) / 2))
    assert by_key["test-call/team-0"].jurors == 2


def test_jury_list_reads_a_constant_number_of_statements(calls: dict[int, Workspace]) -> None:
    counts = {}
    for n, workspace in calls.items():
        jury.progress(workspace, "test-call")  # warm up
        with counting(Engine) as statements:  # `progress` opens its own store
            result = jury.progress(workspace, "test-call")
        counts[n] = len(statements)
        by_name = {p.juror.name: p for p in result}
        assert (by_name["Ann"].scored, by_name["Ann"].to_score, by_name["Ann"].saves) == (
            n,
            n,
            2 * n,
        )
        assert (by_name["Bob"].scored, by_name["Bob"].to_score) == (n - 1, n - 1)  # a conflict
    assert counts[5] == counts[50]


def test_transitions_of_a_call_are_every_history_in_order(calls: dict[int, Workspace]) -> None:
    with open_store(calls[5].db_url) as store:
        log = store.transitions("test-call")
        histories = [dossiers.history(store, f"test-call/team-{i}") for i in range(5)]
        assert store.transitions("other-call") == []
    assert sorted(log, key=lambda t: (t.submission, t.at)) == sorted(
        [t for h in histories for t in h], key=lambda t: (t.submission, t.at)
    )
    assert [(t.submission, t.from_state, t.to_state) for t in log[:2]] == [
        ("test-call/team-0", "submitted", "in_review"),
        ("test-call/team-0", "in_review", "accepted"),
    ]
    assert isinstance(log[0], dossiers.Transition)
