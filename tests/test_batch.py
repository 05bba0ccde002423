"""Batches: mixed outcomes, resumption after SIGKILL, a real Dask cluster, reproduction verdicts."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import (
    TEST_CALL,
    MakeSubmission,
    free_port,
    requires_sandbox,
    wait_for_port,
    write_yaml,
)
from workbench.batch import run_batch
from workbench.cli import main
from workbench.reproduction import reproduce
from workbench.store import RunRow, open_store
from workbench.workspace import Workspace

pytestmark = pytest.mark.kernel
BIN = Path(sys.executable).parent


def _short_limit(workspace: Workspace, seconds: int = 10) -> None:
    call = {**TEST_CALL, "protocol": {**TEST_CALL["protocol"], "time_limit_s": seconds}}
    write_yaml(workspace.calls_dir / "test-call.yaml", call)


def _runs(workspace: Workspace) -> list[RunRow]:
    store = open_store(workspace.db_url)
    try:
        return store.runs(call_id="test-call")
    finally:
        store.close()


def test_a_mixed_batch_ends_with_every_status_right(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _short_limit(workspace)
    make_submission("good")
    make_submission("bad", notebook="broken")
    make_submission("slow", notebook="sleep_forever")
    make_submission("invalid", parameters={"n": "many"})
    make_submission("draft", state="draft")
    result = CliRunner().invoke(
        main, ["-w", str(workspace.root), "batch", "test-call", "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "invalid test-call/invalid: skipped" in result.output
    assert "parameters.n: expected int" in result.output
    assert "skipped test-call/draft: draft" in result.output
    statuses = {r.submission_key: r.status for r in _runs(workspace)}
    assert statuses == {
        "test-call/good": "succeeded",
        "test-call/bad": "failed",
        "test-call/slow": "timed_out",
    }


def test_json_lines_and_resumption_without_rerun(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission("one")
    make_submission("two", parameters={"n": 5})
    args = ["-w", str(workspace.root), "batch", "test-call", "--json"]
    first = CliRunner().invoke(main, args)
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert sorted(line["submission"] for line in lines) == ["test-call/one", "test-call/two"]
    assert all(line["status"] == "succeeded" for line in lines)
    again = CliRunner().invoke(main, args)
    assert again.stdout == ""  # nothing left to run: same input, finished runs
    # A changed parameter is a new input: only that submission runs again.
    doc_path = workspace.submissions_dir / "test-call" / "two" / "submission.yaml"
    doc_path.write_text(doc_path.read_text().replace("n: 5", "n: 6"))
    third = CliRunner().invoke(main, args)
    assert [json.loads(line)["submission"] for line in third.stdout.splitlines()] == [
        "test-call/two"
    ]
    forced = CliRunner().invoke(main, [*args, "--rerun", "--only", "one"])
    assert [json.loads(line)["submission"] for line in forced.stdout.splitlines()] == [
        "test-call/one"
    ]
    assert len(_runs(workspace)) == 4


def test_a_batch_killed_with_sigkill_resumes_without_duplicates_or_losses(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    for name in ("a", "b", "c", "d"):
        make_submission(name, notebook="slow_ok", parameters={"n": 3, "seconds": 2.0})
    env = {**os.environ, "WORKBENCH_HOME": str(workspace.root)}
    command = [BIN / "workbench", "batch", "test-call", "--workers", "1", "--json"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    json.loads(first.stdout.readline())  # one run finished and stored
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    after_kill = _runs(workspace)
    finished = [r for r in after_kill if r.status != "running"]
    assert 1 <= len(finished) < 4
    # What was running when the batch died still says so: it never looks finished.
    assert all(r.status in ("running", "succeeded") for r in after_kill)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    resumed = {json.loads(line)["submission"] for line in second.stdout.splitlines()}
    assert resumed == {f"test-call/{x}" for x in "abcd"} - {r.submission_key for r in finished}
    runs = _runs(workspace)
    succeeded = [r.submission_key for r in runs if r.status == "succeeded"]
    assert sorted(succeeded) == [f"test-call/{x}" for x in "abcd"]  # no duplicate, no loss
    assert {r.run_id for r in after_kill} <= {r.run_id for r in runs}  # history kept


@contextlib.contextmanager
def real_cluster(tmp_path: Path, worker_envs: list[dict[str, str] | None]) -> Iterator[str]:
    """A real `dask scheduler` and one `dask worker` process per entry, on 127.0.0.1."""
    pytest.importorskip("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    dask = shutil.which("dask", path=str(BIN)) or str(BIN / "dask")
    processes = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(logs / "scheduler.log").open("w"),
        )
    ]
    try:
        wait_for_port(port, processes[0])
        for i, env in enumerate(worker_envs):
            worker_dir = tmp_path / f"worker-{i}"
            worker_dir.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--dashboard-address",
                        ":0",
                        "--local-directory",
                        str(worker_dir),
                    ],
                    cwd=worker_dir,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=(logs / f"worker-{i}.log").open("w"),
                )
            )
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(len(worker_envs), timeout=90)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    with real_cluster(tmp_path, [None, None]) as address:
        yield address


def test_batch_on_a_real_dask_cluster(
    workspace: Workspace, make_submission: MakeSubmission, dask_cluster: str
) -> None:
    content = b"x\n1\n"
    import hashlib

    make_submission(
        "one", data=[{"path": "data/in.csv", "sha256": hashlib.sha256(content).hexdigest()}]
    )
    (workspace.submissions_dir / "test-call" / "one" / "data").mkdir()
    (workspace.submissions_dir / "test-call" / "one" / "data" / "in.csv").write_bytes(content)
    make_submission("two", parameters={"n": 7})
    make_submission("bad", notebook="broken")
    report = run_batch(workspace, "test-call", scheduler=dask_cluster)
    statuses = {r.submission: r.status for r in report.records}
    assert statuses == {
        "test-call/one": "succeeded",
        "test-call/two": "succeeded",
        "test-call/bad": "failed",
    }
    for record in report.records:
        # The executed notebook came back and lives in this workspace, not on the worker.
        assert Path(record.run_dir).parent == workspace.runs_dir.resolve()
        assert Path(record.notebook).is_file()
        assert record.fingerprint.data_sha256 == (
            {"data/in.csv": hashlib.sha256(content).hexdigest()}
            if record.submission.endswith("one")
            else {}
        )
    stored = {r.submission_key: r.status for r in _runs(workspace)}
    assert stored == statuses
    two = next(r for r in report.records if r.submission.endswith("two"))
    assert two.metrics["n_predictions"] == 7


def test_reproduce_verdicts(workspace: Workspace, make_submission: MakeSubmission) -> None:
    from workbench.batch import run_submission
    from workbench.errors import InputError

    make_submission("seeded")
    make_submission("noisy", notebook="unseeded")
    with pytest.raises(InputError, match="no succeeded run"):
        reproduce(workspace, "test-call/seeded")
    run_submission(workspace, "test-call/seeded")
    run_submission(workspace, "test-call/noisy")
    same = reproduce(workspace, "test-call/seeded", runs=2)
    assert same.verdict == "reproduced" and len(same.run_ids) == 2 and same.differences == []
    noisy = reproduce(workspace, "test-call/noisy")
    assert noisy.verdict == "diverged"
    (difference,) = noisy.differences
    assert difference.metric == "ai.noise" and difference.delta is not None
    assert difference.delta == pytest.approx(difference.value - difference.reference)  # type: ignore[operator]
    result = CliRunner().invoke(
        main, ["-w", str(workspace.root), "results", "test-call", "--format", "json"]
    )
    verdicts = {
        row["submission"]: row["reproduction"]["verdict"] for row in json.loads(result.stdout)
    }
    assert verdicts == {"test-call/seeded": "reproduced", "test-call/noisy": "diverged"}


@requires_sandbox
def test_a_cluster_with_a_worker_that_cannot_sandbox_is_refused_before_any_task(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    from workbench.errors import SandboxError

    make_submission("one")
    no_bwrap = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    with (
        real_cluster(tmp_path, [None, no_bwrap]) as address,
        pytest.raises(SandboxError) as refused,
    ):
        run_batch(workspace, "test-call", scheduler=address, isolation="sandbox")
    message = str(refused.value)
    assert "worker tcp://127.0.0.1:" in message and "bubblewrap" in message
    assert message.count("worker tcp://") == 1  # only the worker without it
    assert _runs(workspace) == []


def test_a_run_that_ended_in_a_runner_fault_is_run_again_by_the_next_batch(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.runner.control import RunControl

    def broken(self: RunControl, *args: object, **kwargs: object) -> None:
        raise RuntimeError("runner bug")

    make_submission("one")
    with monkeypatch.context() as patch:
        patch.setattr(RunControl, "cell_executing", broken)
        first = run_batch(workspace, "test-call")
    assert [r.status for r in first.records] == ["error"]
    assert "runner fault" in first.records[0].message
    second = run_batch(workspace, "test-call")
    assert [r.status for r in second.records] == ["succeeded"]
    third = run_batch(workspace, "test-call")
    assert third.records == []
    assert [key for key, _ in third.plan.skipped] == ["test-call/one"]
    assert [r.status for r in _runs(workspace)] == ["error", "succeeded"]


def test_the_wire_format_brings_a_workers_run_folder_home(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    from workbench.runner import wire
    from workbench.submissions import validate_submission

    folder = make_submission("one", parameters={"n": 3})
    sub, call = validate_submission(folder, workspace)
    payload = wire.ship(folder, sub, call, run_id="r1", isolation=None, kernel_name="python3")
    # Plain data only: what the worker gets holds no path of this machine.
    assert str(folder) not in repr({k: v for k, v in payload.items() if k != "notebook"})
    record = wire.land(wire.remote_execute(payload), tmp_path / "runs")
    assert record.status == "succeeded", record.message
    assert record.metrics["n_predictions"] == 3
    assert Path(record.run_dir) == (tmp_path / "runs" / "r1").resolve()
    assert Path(record.notebook).is_file() and (Path(record.run_dir) / "run.json").is_file()


def test_repeats_run_interleaved_resume_and_give_medians_intervals_and_a_verdict(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    call = {**TEST_CALL, "protocol": {**TEST_CALL["protocol"], "repeats": 3}}
    write_yaml(workspace.calls_dir / "test-call.yaml", call)
    make_submission("a")
    make_submission("b", parameters={"n": 6})
    first = CliRunner().invoke(
        main, ["-w", str(workspace.root), "batch", "test-call", "--workers", "1"]
    )
    assert first.exit_code == 0, first.output
    assert "6 run(s), 0 invalid, 0 skipped" in first.output
    assert "test-call/a: reproduced against run" in first.output
    assert "(3 runs of the same input)" in first.output
    runs = _runs(workspace)
    assert [r.status for r in runs] == ["succeeded"] * 6
    # Interleaved: every submission's first run, then every second run, then every third.
    assert [r.submission_key[-1] for r in runs] == list("ababab")
    again = run_batch(workspace, "test-call")
    assert again.records == [] and again.reproductions == []
    assert [reason for _, reason in again.plan.skipped] == [
        "already run 3 times with the same input (use --rerun)"
    ] * 2
    result = CliRunner().invoke(
        main, ["-w", str(workspace.root), "results", "test-call", "--format", "json"]
    )
    rows = json.loads(result.stdout)
    assert [row["repeats"] for row in rows] == [3, 3]
    for row in rows:
        assert row["reproduction"]["verdict"] == "reproduced"
        assert len(row["reproduction"]["run_ids"]) == 2
        assert row["energy"]["measured"]
        low, high = row["total_kwh_ci95"]
        assert 0 <= low <= row["energy"]["total_kwh"] <= high  # an energy is never below 0
        for phase, (low, high) in row["phases_ci95"].items():
            assert 0 <= low <= row["energy"]["phases"][phase] <= high
