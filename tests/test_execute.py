"""One run through a real kernel: every status, the run folder, the store."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from tests.conftest import TEST_CALL, MakeSubmission, write_yaml
from workbench.batch import run_submission
from workbench.store import open_store
from workbench.workspace import Workspace

pytestmark = pytest.mark.kernel


def stored(workspace: Workspace, run_id: str) -> dict:
    store = open_store(workspace.db_url)
    try:
        row = store.run(run_id)
        assert row is not None
        return {"status": row.status, "metrics": {m.name: m.value for m in row.metrics}}
    finally:
        store.close()


def test_succeeded_run_records_metrics_and_keeps_its_folder(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission(parameters={"n": 4, "factor": 2.0})
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "succeeded", record.message
    # values = [0, 2, 4, 6]: the parameters were injected
    assert record.metrics == {"ai.mae": 3.0, "baseline.mae": 2.0, "n_predictions": 4.0}
    assert record.records["label"] == {"kind": "string", "value": "demo"}
    run_dir = Path(record.run_dir)
    assert run_dir.parent == workspace.runs_dir
    assert {"notebook.ipynb", "input.ipynb", "run.json", "output.log"} <= {
        p.name for p in run_dir.iterdir()
    }
    executed = nbformat.read(record.notebook, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "succeeded"
    assert stored(workspace, record.run_id) == {"status": "succeeded", "metrics": record.metrics}
    phases = {c.phase for c in record.cells}
    assert {"data", "evaluate", "untagged"} <= phases
    assert all(c.end >= c.start for c in record.cells)


def test_failed_run_names_cell_and_exception(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission(notebook="broken", parameters={"n": 7})
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.ename == "ValueError"
    assert record.error.evalue == "bad value 7"
    # The index is the team's own: papermill's injected and marker cells do not shift it.
    team = nbformat.read(
        workspace.submissions_dir / "test-call/team-a/notebook.ipynb", as_version=4
    )
    assert record.error.cell_index == 2
    assert "raise ValueError" in team.cells[record.error.cell_index].source
    assert stored(workspace, record.run_id)["status"] == "failed"


def test_sys_exit_zero_is_incomplete_never_success(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission(notebook="sysexit0")
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "incomplete"
    assert "stopped early" in record.message


def test_missing_required_metric_is_incomplete(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission(notebook="missing_metric")
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "incomplete"
    assert "n_predictions" in record.message
    assert record.metrics == {"ai.mae": 1.0}


def test_kernel_that_exits_is_kernel_died(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission(notebook="kernel_exit")
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "kernel_died"
    assert Path(record.notebook).is_file()


def test_time_limit_bounds_the_whole_run_and_kills_children(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    call = {**TEST_CALL, "protocol": {**TEST_CALL["protocol"], "time_limit_s": 8}}
    write_yaml(workspace.calls_dir / "test-call.yaml", call)
    make_submission(notebook="sleep_forever")
    begin = time.monotonic()
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "timed_out"
    assert time.monotonic() - begin < 60  # the notebook asked for 600 s
    child = int((Path(record.run_dir) / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the notebook's child process survived the time limit"
        time.sleep(0.1)
    assert stored(workspace, record.run_id)["status"] == "timed_out"


def test_process_isolation_scrubs_the_environment(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_DB", workspace.db_url)
    monkeypatch.setenv("JURY_TOKEN", "secret")
    make_submission(notebook="env_probe")
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "succeeded", record.message
    names = record.records["env"]["value"]
    assert "JURY_TOKEN" not in names and "WORKBENCH_DB" not in names
    assert "PATH" in names


def test_runs_are_appended_never_overwritten(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission()
    first = run_submission(workspace, "test-call/team-a")
    second = run_submission(workspace, "test-call/team-a")
    assert first.run_id != second.run_id
    assert first.fingerprint.input_sha256 == second.fingerprint.input_sha256
    store = open_store(workspace.db_url)
    try:
        assert [r.run_id for r in store.runs("test-call/team-a")] == [first.run_id, second.run_id]
        ((_, latest),) = store.latest_runs("test-call")
        assert latest is not None and latest.run_id == second.run_id
    finally:
        store.close()
    assert Path(first.notebook).is_file() and Path(second.notebook).is_file()


def test_fingerprint_follows_inputs(workspace: Workspace, make_submission: MakeSubmission) -> None:
    from workbench.runner.execute import fingerprint

    folder = make_submission()
    base = fingerprint(folder / "notebook.ipynb", {"n": 1}, {}, "python3")
    assert base == fingerprint(folder / "notebook.ipynb", {"n": 1}, {}, "python3")
    assert (
        base.input_sha256
        != fingerprint(folder / "notebook.ipynb", {"n": 2}, {}, "python3").input_sha256
    )
    with_data = fingerprint(folder / "notebook.ipynb", {"n": 1}, {"d.csv": "a" * 64}, "python3")
    assert with_data.input_sha256 != base.input_sha256
    assert base.python == ".".join(map(str, os.sys.version_info[:3]))


# notebook in tests/notebooks/errors -> status, ename, a piece of evalue, team cell index
ERRORS = {
    "line_magic": ("failed", "UsageError", "`%notamagic` not found", 2),
    "cell_magic": ("failed", "UsageError", "`%%notacellmagic` not found", 2),
    "syntax_error": ("failed", "SyntaxError", "invalid syntax", 2),
    "name_error": ("failed", "NameError", "'undefined_name' is not defined", 2),
    "empty_message": ("failed", "RuntimeError", "", 2),
    "custom_exception": ("failed", "QuotaExceeded", "quota of 3 requests exceeded", 2),
    "no_cell_ids": ("failed", "ZeroDivisionError", "division by zero", 2),
    "system_exit": ("incomplete", "SystemExit", "3", 2),
    "kernel_dies": ("kernel_died", "DeadKernelError", "Kernel died", None),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_a_notebook_error_is_reported_as_the_notebook_raised_it(
    workspace: Workspace, make_submission: MakeSubmission, name: str
) -> None:
    status, ename, evalue, index = ERRORS[name]
    make_submission(notebook=f"errors/{name}")
    record = run_submission(workspace, "test-call/team-a")
    assert (record.status, record.error and record.error.ename) == (status, ename), record.message
    assert record.error is not None and evalue in record.error.evalue
    assert record.error.cell_index == index
    if index is not None:
        assert f"cell {index}" in record.message and ename in record.message
        # the executed notebook holds the error too, as the kernel reported it
        executed = nbformat.read(record.notebook, as_version=4)
        outputs = [o for c in executed.cells for o in c.get("outputs", [])]
        assert any(o.output_type == "error" and o.ename == ename for o in outputs)


def test_a_runner_hook_that_raises_is_a_runner_fault_not_the_teams(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.runner.control import RunControl

    def broken(self: RunControl, *args: object, **kwargs: object) -> None:
        raise KeyError("runner bug")

    monkeypatch.setattr(RunControl, "cell_complete", broken)
    make_submission()
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "error"
    assert record.error is not None and record.error.ename == "ExecutionError"
    assert "runner fault" in record.message and "KeyError: 'runner bug'" in record.message
    log = (Path(record.run_dir) / "output.log").read_text()
    assert "Traceback" in log and "runner bug" in log
    assert stored(workspace, record.run_id)["status"] == "error"


@pytest.mark.parametrize("damage", ["corrupt", "remove"])
def test_an_unreadable_executed_notebook_is_never_a_success(
    workspace: Workspace,
    make_submission: MakeSubmission,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    import papermill

    real = papermill.execute_notebook

    def execute_then_damage(input_path: str, output_path: str, **kwargs: object) -> object:
        result = real(input_path, output_path, **kwargs)
        if damage == "corrupt":
            Path(output_path).write_text('{"cells": [', encoding="utf-8")
        else:
            Path(output_path).unlink()
        return result

    monkeypatch.setattr(papermill, "execute_notebook", execute_then_damage)
    make_submission()
    record = run_submission(workspace, "test-call/team-a")
    assert record.status == "error", record.message
    assert "executed notebook is unreadable" in record.message
