"""The CLI is thin: commands call one library function. Plus a real end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT, MakeSubmission
from workbench.cli import main
from workbench.workspace import Workspace


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in main.commands:
        assert command in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, workbench.cli\n"
        "heavy = {'pandas', 'papermill', 'nbformat', 'sqlalchemy', 'pydantic', 'codecarbon'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_passes_its_options_to_the_library(tmp_path: Path) -> None:
    with mock.patch("workbench.batch.run_submission") as run:
        run.return_value.status = "succeeded"
        run.return_value.summary.return_value = {"status": "succeeded"}
        result = CliRunner().invoke(
            main, ["-w", str(tmp_path), "run", "diat/x", "--isolation", "none", "--json"]
        )
    assert result.exit_code == 0, result.output
    (workspace, ref), kwargs = run.call_args
    assert workspace.root == tmp_path.resolve() and ref == "diat/x"
    on_note = kwargs.pop("on_note")
    assert kwargs == {"isolation": "none", "kernel_name": "python3"}
    assert json.loads(result.output) == {"status": "succeeded"}
    on_note("questionnaire not answered yet")  # notes go to stderr, beside the JSON



def test_run_exit_code_is_1_for_a_recorded_failure(tmp_path: Path) -> None:
    with mock.patch("workbench.batch.run_submission") as run:
        run.return_value.status = "failed"
        run.return_value.summary.return_value = {"status": "failed"}
        result = CliRunner().invoke(main, ["-w", str(tmp_path), "run", "x", "--json"])
    assert result.exit_code == 1


def test_db_option_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", "sqlite:///from-env.db")
    assert Workspace.from_env(tmp_path).db_url == "sqlite:///from-env.db"
    assert Workspace.from_env(tmp_path, "sqlite:///flag.db").db_url == "sqlite:///flag.db"
    monkeypatch.delenv("WORKBENCH_DB")
    assert Workspace.from_env(tmp_path).db_url == f"sqlite:///{tmp_path.resolve() / 'workbench.db'}"


@pytest.mark.kernel
def test_end_to_end_through_the_real_cli(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    """`workbench run --json` then `workbench results` in fresh processes, as a user would."""
    make_submission(parameters={"n": 5})
    env = {**os.environ, "WORKBENCH_HOME": str(workspace.root)}
    env.pop("WORKBENCH_DB", None)
    exe = Path(sys.executable).parent / "workbench"
    run = subprocess.run(
        [exe, "run", "test-call/team-a", "--json"], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert {
        "run_id",
        "submission",
        "call",
        "status",
        "metrics",
        "duration_s",
        "fingerprint",
        "notebook",
    } <= set(record)
    assert record["status"] == "succeeded"
    assert record["metrics"]["n_predictions"] == 5
    assert Path(record["notebook"]).is_file()
    results = subprocess.run(
        [exe, "results", "test-call", "--format", "json"], capture_output=True, text=True, env=env
    )
    assert results.returncode == 0, results.stderr
    (row,) = json.loads(results.stdout)
    assert row["run_id"] == record["run_id"] and row["metrics"] == record["metrics"]
    csv_out = subprocess.run(
        [exe, "results", "test-call", "--format", "csv"], capture_output=True, text=True, env=env
    )
    header, line = csv_out.stdout.strip().splitlines()
    assert header.startswith("submission,team,template,run_id,status,duration_s")
    assert record["run_id"] in line


def test_readme_documents_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in main.commands:
        assert f"workbench {command}" in readme, command
    assert "make demo" in readme and "make test" in readme


def test_isolation_choices_are_the_registered_levels() -> None:
    from workbench.cli import ISOLATION_LEVELS
    from workbench.runner.isolation import isolation_levels

    assert sorted(ISOLATION_LEVELS) == isolation_levels.names()
