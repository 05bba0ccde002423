"""Validation of submissions, and bad input: one clear line, exit code 2, nothing stored."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import ROOT, MakeSubmission
from workbench.cli import main
from workbench.store import RunRow, open_store
from workbench.submissions import load_submission, new_submission
from workbench.validation import validate
from workbench.workspace import Workspace


def cli(workspace: Workspace, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["-w", str(workspace.root), *args])
    return result.exit_code, result.stdout, result.stderr


def assert_nothing_stored(workspace: Workspace) -> None:
    db = workspace.root / "workbench.db"
    if db.exists():
        assert open_store(workspace.db_url).count(RunRow) == 0
    assert not workspace.runs_dir.exists() or not any(workspace.runs_dir.iterdir())


def test_the_repository_examples_are_valid() -> None:
    report = validate(Workspace(ROOT))
    assert report.ok, "\n".join(map(str, report.problems))
    assert len(report.checked) >= 3


def test_a_valid_submission(workspace: Workspace, make_submission: MakeSubmission) -> None:
    folder = make_submission()
    code, out, _ = cli(workspace, "validate", str(folder))
    assert code == 0, out
    assert load_submission(folder).key == "test-call/team-a"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


BAD_CASES = {
    "wrong parameter type": ({"parameters": {"n": "four"}}, "parameters.n", "expected int"),
    "float for int": ({"parameters": {"n": 2.5}}, "parameters.n", "expected int"),
    "bool for int": ({"parameters": {"n": True}}, "parameters.n", "expected int"),
    "injected name": (
        {"parameters": {"x = 1\nimport os": 1}},
        "parameters.'x = 1\\nimport os'",
        "not a plain Python identifier",
    ),
    "keyword name": ({"parameters": {"import": 1}}, "parameters.'import'", "identifier"),
    "unknown parameter": ({"parameters": {"nn": 1}}, "parameters.nn", "not in the notebook"),
    "unknown template": ({"template": "teleport"}, "template", "not accepted"),
    "unsafe id": ({"id": "../escape"}, "id", "pattern"),
    "wrong choice": (
        {"answers": {"open-data": True, "hosting": "moon"}},
        "answers.hosting",
        "one of",
    ),
    "yes/no as text": (
        {"answers": {"open-data": "yes", "hosting": "cloud"}},
        "answers.open-data",
        "yes or no",
    ),
    "unknown question": (
        {"answers": {"open-data": True, "hosting": "cloud", "extra": 1}},
        "answers.extra",
        "no such question",
    ),
    "missing data file": (
        {"data": [{"path": "data/flows.csv", "sha256": "0" * 64}]},
        "data.0.path",
        "file not found",
    ),
    "data outside the folder": (
        {"data": [{"path": "../../secret.csv", "sha256": "0" * 64}]},
        "data.0.path",
        "relative path inside",
    ),
    "unknown field": ({"budget": 3}, "budget", "Extra inputs"),
    "bad contact": ({"contact": "not-an-address"}, "contact", "email"),
    "unknown call": ({"call": "nope"}, "call", "does not match the folder"),
}


def test_an_unanswered_question_stops_validate_not_a_run(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    """Answers are needed to hand a dossier in, not to experiment with it."""
    folder = make_submission(answers={"open-data": True})
    code, out, _ = cli(workspace, "validate", str(folder))
    assert code == 2
    assert f"{folder / 'submission.yaml'}: answers.hosting: not answered" in out
    from workbench.submissions import validate_submission

    sub, _ = validate_submission(folder, workspace, answers=False)
    assert sub.answers == {"open-data": True}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_bad_submission_is_one_line_per_problem_exit_2_nothing_stored(
    case: str, workspace: Workspace, make_submission: MakeSubmission
) -> None:
    overrides, field, fragment = BAD_CASES[case]
    folder = make_submission(**overrides)
    where = folder / "submission.yaml"
    for command in ("validate", "run"):
        code, out, err = cli(workspace, command, str(folder))
        assert code == 2, (command, out, err)
        text = out + err
        assert any(
            f"{where}: {field}" in line and fragment in line for line in text.splitlines()
        ), text
    assert_nothing_stored(workspace)


def test_altered_data_file_is_refused(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    content = b"day,flow\n1,2\n"
    folder = make_submission(data=[{"path": "data/flows.csv", "sha256": _sha(content)}])
    (folder / "data").mkdir()
    (folder / "data" / "flows.csv").write_bytes(content)
    assert cli(workspace, "validate", str(folder))[0] == 0
    (folder / "data" / "flows.csv").write_bytes(content + b"3,4\n")
    code, out, _ = cli(workspace, "run", str(folder))
    assert code == 2
    assert "data.0.sha256: data/flows.csv: content does not match its sha256" in out + _
    assert_nothing_stored(workspace)


def test_notebook_that_is_not_json(workspace: Workspace, make_submission: MakeSubmission) -> None:
    folder = make_submission()
    (folder / "notebook.ipynb").write_text("{ this is not json", encoding="utf-8")
    code, _out, err = cli(workspace, "run", str(folder))
    assert code == 2
    assert f"{folder / 'notebook.ipynb'}: -: not a valid notebook" in err
    assert_nothing_stored(workspace)


def test_notebook_without_parameters_cell(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    import nbformat

    folder = make_submission()
    nb = nbformat.read(folder / "notebook.ipynb", as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    nbformat.write(nb, folder / "notebook.ipynb")
    code, out, _ = cli(workspace, "validate", str(folder))
    assert code == 2  # the submission passes `n`, which such a notebook cannot take
    assert (
        f"{folder / 'submission.yaml'}: parameters: the notebook has no cell tagged 'parameters',"
        " so it takes none (given: n)" in out
    )


def test_malformed_submission_yaml(workspace: Workspace, make_submission: MakeSubmission) -> None:
    folder = make_submission()
    (folder / "submission.yaml").write_text("id: team-a\nteam: [oops\n", encoding="utf-8")
    code, out, err = cli(workspace, "run", str(folder))
    assert code == 2
    lines = [line for line in (out + err).splitlines() if "submission.yaml" in line]
    assert len(lines) == 1 and "invalid YAML: line" in lines[0]
    assert_nothing_stored(workspace)


def test_all_problems_are_reported_not_only_the_first(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    folder = make_submission(parameters={"n": "x", "nope": 1}, answers={}, template="teleport")
    code, out, _ = cli(workspace, "validate", str(folder))
    assert code == 2
    fields = {line.split(": ")[1] for line in out.splitlines()}
    assert {
        "template",
        "parameters.n",
        "parameters.nope",
        "answers.open-data",
        "answers.hosting",
    } <= fields


def test_unknown_call_on_the_command_line(workspace: Workspace) -> None:
    code, _, err = cli(workspace, "results", "no-such-call")
    assert code == 2
    assert "unknown call 'no-such-call'" in err


def test_new_writes_template_defaults(workspace: Workspace) -> None:
    folder = new_submission(workspace, "test-call", "ok", "fresh", "Team")
    doc = yaml.safe_load((folder / "submission.yaml").read_text())
    assert doc["parameters"] == {"n": 3, "factor": 1.5, "label": "demo"}
    assert "state" not in doc  # the store's audit log holds it: a draft until handed in
    assert set(doc["answers"]) == {"open-data", "hosting"}
    # Not answered yet: validation says so, and nothing else.
    report = validate(workspace, [folder])
    assert {p.field for p in report.problems} == {"answers.open-data", "answers.hosting"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "test-call", "-t", "nope", "--id", "x", "--team", "T"], "not accepted"),
        (["new", "test-call", "-t", "ok", "--id", "Bad_Id", "--team", "T"], "slugs"),
        (["new", "nope", "-t", "ok", "--id", "x", "--team", "T"], "unknown call"),
    ],
)
def test_new_refuses_bad_input(workspace: Workspace, args: list[str], message: str) -> None:
    code, _, err = cli(workspace, *args)
    assert code == 2 and message in err
    assert not (workspace.submissions_dir / "test-call" / "x").exists()


def test_new_refuses_to_overwrite(workspace: Workspace, make_submission: MakeSubmission) -> None:
    make_submission("taken")
    code, _, err = cli(workspace, "new", "test-call", "-t", "ok", "--id", "taken", "--team", "T")
    assert code == 2 and "already exists" in err
