"""The CLI is thin: commands call one library function. Plus a real end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from unittest import mock

import click
import pytest
from click.testing import CliRunner

from tests.conftest import MakeSubmission
from tests.test_docs import command_tree
from workbench.cli import main
from workbench.workspace import Workspace


def test_every_command_has_a_help_text_and_answers_help() -> None:
    for path, command in command_tree(main).items():
        assert command.get_short_help_str().strip(), f"workbench {' '.join(path)} has no help"
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: main {' '.join(path)}" in result.output


def _choices(path: tuple[str, ...], param: str) -> tuple[str, ...]:
    (option,) = [p for p in command_tree(main)[path].params if p.name == param]
    assert isinstance(option.type, click.Choice)
    return tuple(option.type.choices)


def test_state_choices_are_the_dossier_states() -> None:
    from workbench.dossiers import STATES, TRANSITIONS
    from workbench.submissions import Submission

    assert _choices(("decide",), "state") == STATES
    assert tuple(TRANSITIONS) == STATES
    assert {to for targets in TRANSITIONS.values() for to in targets} <= set(STATES)
    declared, none = typing.get_args(Submission.model_fields["state"].annotation)
    assert typing.get_args(declared) == STATES and none is type(None)


def test_language_choices_are_the_languages() -> None:
    from workbench.calls import LocalizedText
    from workbench.vocabulary import LANGUAGES

    with_lang = [
        path for path, c in command_tree(main).items() if "lang" in {p.name for p in c.params}
    ]
    assert with_lang, "no command takes --lang"
    for path in with_lang:
        assert _choices(path, "lang") == LANGUAGES, path
    assert tuple(LocalizedText.model_fields) == LANGUAGES


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


def test_isolation_choices_are_the_registered_levels() -> None:
    from workbench.runner.isolation import isolation_levels

    for path in (("run",), ("batch",), ("reproduce",)):
        assert sorted(_choices(path, "isolation")) == isolation_levels.names(), path


def test_the_call_schema_takes_its_isolation_levels_from_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from workbench.calls import Protocol
    from workbench.runner.isolation import NoIsolation, isolation_levels

    schema = Protocol.model_json_schema()["properties"]["isolation"]
    assert sorted(schema["enum"]) == isolation_levels.names()
    assert schema["default"] in isolation_levels.names()
    with pytest.raises(ValidationError, match="none, process, sandbox"):
        Protocol(isolation="docker")

    class Docker(NoIsolation):
        name = "docker"

    monkeypatch.setitem(isolation_levels._levels, "docker", Docker)
    assert Protocol(isolation="docker").isolation == "docker"


def test_a_reproduction_summary_names_the_first_differing_metrics() -> None:
    from workbench.reproduction import SHOWN_METRICS, describe

    assert describe({"verdict": "reproduced", "differences": []}) == "reproduced"
    few = {"verdict": "diverged", "differences": [{"metric": "mae"}, {"metric": "f1"}]}
    assert describe(few) == "diverged (f1, mae)"
    many = {"verdict": "diverged", "differences": [{"metric": f"m{i}"} for i in range(9)]}
    shown = ", ".join(f"m{i}" for i in range(SHOWN_METRICS))
    assert describe(many) == f"diverged ({shown}, ...)"


def test_reproduce_prints_each_difference_in_words(tmp_path: Path) -> None:
    from workbench.reproduction import Difference, Reproduction

    result = Reproduction(
        submission="diat/x",
        reference_run_id="r0",
        run_ids=["r1"],
        verdict="diverged",
        differences=[
            Difference(run_id="r1", metric="mae", reference=1.0, value=1.5, delta=0.5, allowed=0.1),
            Difference(
                run_id="r1",
                metric="f1",
                reference=None,
                value=0.9,
                delta=None,
                allowed=None,
                reason="not recorded by the reference",
            ),
        ],
    )
    with mock.patch("workbench.reproduction.reproduce", return_value=result):
        out = CliRunner().invoke(main, ["-w", str(tmp_path), "reproduce", "diat/x"])
    assert out.exit_code == 1
    assert "mae: 1 -> 1.5 (delta +0.5, allowed 0.1)" in out.output
    assert "f1: not recorded by the reference" in out.output


def test_the_results_table_reads_in_units_with_intervals_unknowns_and_flags() -> None:
    from rich.console import Console

    from tests.test_html import _repeated
    from workbench.cli.funders import _results_table

    console = Console(record=True, width=400, color_system=None)
    console.print(_results_table("test-call", _repeated()))
    text = console.export_text()
    header = next(line for line in text.splitlines() if "submission" in line)
    for column in ("energy (mWh)", "energy/1000 pred. (mWh)", "emissions (µg CO2e)"):
        assert column in header
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "4.20 [3.90, 4.60]" in lines["a"] and "10.5 [9.00, 12.0]" in lines["a"]
    assert "median of 3 runs" in lines["a"] and "not distinguishable on energy from b" in lines["a"]
    assert "[low, high]: 95 % t-interval" in text
    assert "4.30" in lines["d"] and "1 run: no interval" in lines["d"]
    assert "unknown: no cell tagged train or inference" in lines["u"]
    assert "phases untagged: AI energy unknown" in lines["u"]
    assert "4e-06" not in text and "0.0042" not in text
