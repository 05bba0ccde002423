"""Repeated runs without kernels: the statistics, the rows' medians and intervals, the batch's
plan (interleaved, resumed) and the repeats' reproduction verdict, through the store's API."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import TEST_CALL, MakeSubmission, write_yaml
from tests.test_queries import FINGERPRINT, MACHINE
from workbench.batch import input_sha256, interleave, plan_batch
from workbench.cli import main
from workbench.repeats import ci95, energy_summary, median, t_quantile
from workbench.reproduction import Attempt, compare_runs, repeats_verdict
from workbench.results import call_results
from workbench.runner.execute import fingerprint
from workbench.runner.metering import Energy
from workbench.runner.records import Fingerprint, RunRecord, new_run_id
from workbench.store import Store, open_store
from workbench.submissions import Submission
from workbench.workspace import Workspace

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def _energy(total: float, **overrides: Any) -> Energy:
    fields: dict[str, Any] = {
        "measured": True,
        "total_kwh": total,
        "phases": {"train": total * 0.75, "baseline": total * 0.25},
        "co2e_g": total * 56.0,
        "wh_per_1000_predictions": total * 10,
        "ai_kwh": total * 0.75,
        "baseline_kwh": total * 0.25,
        "method": "load-estimate",
        "machine": MACHINE,
        "machine_fingerprint": MACHINE.fingerprint,
        "country_iso_code": "FRA",
        "pue": 1.0,
    }
    return Energy(**{**fields, **overrides})


def _store_run(
    store: Store,
    key: str,
    minute: int,
    *,
    status: str = "succeeded",
    energy: Energy | None = None,
    metrics: dict[str, float] | None = None,
    fp: Fingerprint = FINGERPRINT,
) -> RunRecord:
    at = T0 + dt.timedelta(minutes=minute)
    record = RunRecord(
        run_id=new_run_id(at),
        submission=key,
        call="test-call",
        status=status,
        started_at=at,
        finished_at=at,
        duration_s=1.0,
        metrics={"n_predictions": 100.0} if metrics is None else metrics,
        energy=energy,
        fingerprint=fp,
        isolation="process",
        notebook="n.ipynb",
        run_dir="r",
    )
    store.start_run(record.model_copy(update={"status": "running"}))
    store.finish_run(record)
    return record


def _register(workspace: Workspace, store: Store, sub_id: str) -> str:
    sub = Submission(
        id=sub_id,
        call="test-call",
        team="T",
        organisation="O",
        title="P",
        template="ok",
        state="submitted",
    )
    store.register(workspace.call("test-call"), sub)
    return sub.key


@pytest.fixture
def bare(tmp_path: Path) -> Workspace:
    write_yaml(tmp_path / "calls" / "test-call.yaml", TEST_CALL)
    return Workspace(tmp_path)


def test_the_t_interval_of_known_values() -> None:
    low, high = ci95([1.0, 2.0, 3.0])  # type: ignore[misc]
    assert (low, high) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)))
    assert ci95([4.0, 6.0]) == pytest.approx((5 - 12.7062, 5 + 12.7062))  # s = √2, K = 2
    assert ci95([5.0]) is None and ci95([]) is None  # one run: no interval
    assert ci95([1.0, 2.0, 3.0], floor=0.0) == pytest.approx((0.0, 2 + 4.3027 / math.sqrt(3)))
    assert ci95([2.5, 2.5, 2.5]) == (2.5, 2.5)
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([1.0, 2.0, 3.0, 10.0]) == 2.5


def test_t_quantiles_match_students_distribution() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 9, 19, 30, 45, 200):
        assert t_quantile(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_the_interval_always_contains_the_median() -> None:
    values = [0.0] * 11 + [10.0] * 9  # skewed: mean 4.5, median 0
    low, high = ci95(values)  # type: ignore[misc]
    half = t_quantile(19) * 5.104 / math.sqrt(20)
    assert (low, high) == pytest.approx((0.0, 4.5 + half), abs=1e-3)


def test_energy_summary_takes_medians_and_keeps_the_latest_runs_other_fields() -> None:
    energies = [_energy(0.003), _energy(0.001), _energy(0.002, method="rapl")]
    summary = energy_summary(energies)
    assert summary.runs == 3 and summary.energy is not None
    assert summary.energy.total_kwh == pytest.approx(0.002)
    assert summary.energy.phases == pytest.approx({"train": 0.0015, "baseline": 0.0005})
    assert summary.energy.co2e_g == pytest.approx(0.002 * 56)
    assert summary.energy.method == "rapl"  # from the latest (the last) run
    assert summary.total_kwh_ci95 == pytest.approx(ci95([0.003, 0.001, 0.002], floor=0.0))
    assert summary.total_kwh_ci95[0] == 0.0  # type: ignore[index]  # mean - t·s/√K < 0
    assert summary.wh_per_1000_predictions_ci95 == pytest.approx(
        ci95([0.03, 0.01, 0.02], floor=0.0)
    )
    assert summary.ai_minus_baseline_kwh == pytest.approx(0.001)
    assert summary.ai_minus_baseline_kwh_ci95 == pytest.approx(ci95([0.0015, 0.0005, 0.001]))
    assert summary.phases_ci95["train"] == pytest.approx(
        ci95([0.00225, 0.00075, 0.0015], floor=0.0)
    )
    one = energy_summary([_energy(0.004)])
    assert one.total_kwh_ci95 is None and one.phases_ci95 == {}
    assert one.ai_minus_baseline_kwh == pytest.approx(0.002)


def test_a_figure_unknown_in_any_run_stays_unknown() -> None:
    reason = {"baseline_kwh": "no cell is tagged baseline"}
    energies = [_energy(0.001), _energy(0.002, baseline_kwh=None, unknown=reason)]
    summary = energy_summary(energies)
    assert summary.energy is not None and summary.energy.baseline_kwh is None
    assert summary.energy.unknown == reason
    assert summary.ai_minus_baseline_kwh is None and summary.ai_minus_baseline_kwh_ci95 is None
    assert summary.energy.ai_kwh == pytest.approx(0.001125)


def test_rows_are_the_medians_of_the_latest_inputs_succeeded_runs(bare: Workspace) -> None:
    other_input = FINGERPRINT.model_copy(update={"parameters_sha256": "d" * 64})
    with open_store(bare.db_url) as store:
        key = _register(bare, store, "a")
        _store_run(store, key, 0, energy=_energy(0.5), fp=other_input)  # an older input
        _store_run(store, key, 1, energy=_energy(0.001))
        _store_run(store, key, 2, status="failed", energy=_energy(0.9))
        _store_run(store, key, 3, energy=_energy(0.003))
        _store_run(store, key, 4, energy=_energy(0.002))
        failing = _register(bare, store, "b")
        _store_run(store, failing, 1, energy=_energy(0.001))
        _store_run(store, failing, 2, status="failed", energy=_energy(0.007))
        _register(bare, store, "c")
        rows = {row.submission_id: row for row in call_results(store, "test-call")}
    a = rows["a"]
    assert a.repeats == 3 and a.energy is not None
    assert a.energy.total_kwh == pytest.approx(0.002)
    assert a.total_kwh_ci95 == pytest.approx(ci95([0.001, 0.003, 0.002], floor=0.0))
    assert a.ai_minus_baseline_kwh == pytest.approx(0.001)
    assert set(a.phases_ci95) == {"train", "baseline"}
    # The latest run failed: its own figures, as recorded, and no interval.
    b = rows["b"]
    assert (b.status, b.repeats, b.total_kwh_ci95) == ("failed", 1, None)
    assert b.energy is not None and b.energy.total_kwh == pytest.approx(0.007)
    assert (rows["c"].status, rows["c"].repeats, rows["c"].energy) == ("not_run", 0, None)


def test_results_json_shows_the_repeats_and_their_intervals(bare: Workspace) -> None:
    with open_store(bare.db_url) as store:
        key = _register(bare, store, "a")
        for minute, total in enumerate((0.001, 0.002, 0.004)):
            _store_run(store, key, minute, energy=_energy(total))
    result = CliRunner().invoke(
        main, ["-w", str(bare.root), "results", "test-call", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["repeats"] == 3
    low, high = row["total_kwh_ci95"]
    assert row["energy"]["total_kwh"] == pytest.approx(0.002)
    assert low <= row["energy"]["total_kwh"] <= high
    interval = ci95([0.01, 0.02, 0.04], floor=0.0)
    assert interval is not None and row["wh_per_1000_predictions_ci95"] == pytest.approx(interval)
    assert row["ai_minus_baseline_kwh"] == pytest.approx(0.001)
    assert len(row["ai_minus_baseline_kwh_ci95"]) == 2
    assert set(row["phases_ci95"]) == {"train", "baseline"}


def test_the_plan_interleaves_the_missing_repeats(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    write_yaml(
        workspace.calls_dir / "test-call.yaml",
        {**TEST_CALL, "protocol": {**TEST_CALL["protocol"], "repeats": 3}},
    )
    folders = {name: make_submission(name) for name in ("a", "b", "c")}
    with open_store(workspace.db_url) as store:
        plan = plan_batch(workspace, store, "test-call")
        assert [job.label for job in plan.jobs] == [
            f"{name} run {n}/3" for n in (1, 2, 3) for name in ("a", "b", "c")
        ]
        # a already has two settled runs of its input (an `error` run does not count),
        # c all three: a batch run again makes only what is missing.
        jobs = {job.submission.id: job for job in plan.jobs}
        for name, statuses in {
            "a": ("succeeded", "error", "failed"),
            "c": ("succeeded",) * 3,
        }.items():
            folder = folders[name]
            fp = fingerprint(folder / "notebook.ipynb", {"n": 4}, {}, "python3")
            assert fp.input_sha256 == jobs[name].input_sha256
            assert fp.input_sha256 == input_sha256(folder, jobs[name].submission, "python3")
            for minute, status in enumerate(statuses):
                _store_run(store, f"test-call/{name}", minute, status=status, fp=fp)
        resumed = plan_batch(workspace, store, "test-call")
        rerun = plan_batch(workspace, store, "test-call", rerun=True, only=["c"])
    assert [job.label for job in resumed.jobs] == [
        "a run 3/3",
        "b run 1/3",
        "b run 2/3",
        "b run 3/3",
    ]
    assert resumed.skipped == [
        ("test-call/c", "already run 3 times with the same input (use --rerun)")
    ]
    assert [job.label for job in rerun.jobs] == ["c run 1/3", "c run 2/3", "c run 3/3"]


def test_interleave_takes_one_job_of_each_queue_per_round() -> None:
    assert interleave([]) == []
    assert interleave([[1, 2, 3], [4], [5, 6]]) == [1, 4, 5, 2, 6, 3]  # type: ignore[list-item]


def test_the_repeats_verdict_compares_every_run_with_the_first_that_succeeded(
    bare: Workspace,
) -> None:
    protocol = bare.call("test-call").protocol
    sha = FINGERPRINT.input_sha256
    with open_store(bare.db_url) as store:
        key = _register(bare, store, "a")
        _store_run(store, key, 0, status="error", metrics={})  # a runner fault: left out
        first = _store_run(store, key, 1, metrics={"ai.mae": 1.0})
        assert repeats_verdict(store, key, sha, protocol) is None  # one run: no verdict
        same = _store_run(store, key, 2, metrics={"ai.mae": 1.0})
        verdict = repeats_verdict(store, key, sha, protocol)
        assert verdict is not None and verdict.verdict == "reproduced"
        assert (verdict.reference_run_id, verdict.run_ids) == (first.run_id, [same.run_id])
        moved = _store_run(store, key, 3, metrics={"ai.mae": 1.5})
        failed = _store_run(store, key, 4, status="failed", metrics={"ai.mae": 1.0})
        verdict = repeats_verdict(store, key, sha, protocol)
        assert verdict is not None and verdict.verdict == "diverged"
        assert [(d.run_id, d.metric) for d in verdict.differences] == [
            (moved.run_id, "ai.mae"),
            (failed.run_id, "status"),
        ]
        assert verdict.differences[0].delta == pytest.approx(0.5)
        stored = store.latest_reproductions("test-call")[key]
    assert stored == verdict.model_dump(mode="json")


def test_reproduce_and_repeats_share_the_comparison() -> None:
    from workbench.calls import Protocol, Tolerance

    protocol = Protocol(tolerances={"ai.mae": Tolerance(abs=0.1)})
    reference = Attempt("r0", "succeeded", "", {"ai.mae": 1.0, "n": 3.0})
    runs = [
        Attempt("r1", "succeeded", "", {"ai.mae": 1.05, "n": 3.0}),
        Attempt("r2", "succeeded", "", {"ai.mae": 1.0}),
    ]
    result = compare_runs("test-call/a", reference, runs, protocol)
    assert result.verdict == "diverged" and result.run_ids == ["r1", "r2"]
    ((difference),) = result.differences
    assert (difference.run_id, difference.metric, difference.reason) == (
        "r2",
        "n",
        "not recorded by this run",
    )


def test_the_boamps_export_takes_the_interval_of_its_inputs_repeats() -> None:
    from types import SimpleNamespace

    from workbench.boamps import repeats_interval

    def run(sha: str, kwh: float | None, status: str = "succeeded") -> SimpleNamespace:
        return SimpleNamespace(input_sha256=sha, energy_kwh=kwh, status=status)

    runs = [run("a", 1.0), run("a", 2.0), run("a", 3.0), run("b", 50.0), run("a", 9.0, "failed")]
    low, high = repeats_interval(runs, "a") or (None, None)
    assert low == 0.0 and high == pytest.approx(2 + 4.303 / 3**0.5, abs=1e-3)  # cut at 0
    assert repeats_interval(runs, "b") is None  # one run: no interval
    assert repeats_interval([run("a", None), run("a", 1.0)], "a") is None
