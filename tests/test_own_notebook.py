"""A team's own notebook, taken as it is: `new --template custom --notebook`, no parameters cell."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import NOTEBOOKS
from workbench.cli import main
from workbench.validation import validate
from workbench.workspace import Workspace


def own_notebook(path: Path, *, tagged: bool = False, parameters: bool = False) -> Path:
    """A notebook written the team's way: no workbench conventions unless asked."""
    cells = [new_code_cell("import workbench\nn = 5")]
    if parameters:
        cells[0].metadata["tags"] = ["parameters"]
        cells.insert(1, new_code_cell("import workbench"))
    record = new_code_cell("workbench.record('n_predictions', n)")
    if tagged:
        record.metadata["tags"] = ["evaluate"]
    nbformat.write(new_notebook(cells=[*cells, record]), path)
    return path


def cli(workspace: Workspace, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--workspace", str(workspace.root), *args])
    return result.exit_code, result.stdout, result.stderr


def test_new_custom_copies_the_notebook_and_reads_its_parameters(
    workspace: Workspace, tmp_path: Path
) -> None:
    code, out, err = cli(
        workspace, "new", "test-call", "-t", "custom", "--id", "mine", "--team", "T",
        "--notebook", str(NOTEBOOKS / "ok.ipynb"),
    )  # fmt: skip
    assert code == 0, err
    folder = workspace.submissions_dir / "test-call" / "mine"
    assert (folder / "notebook.ipynb").read_bytes() == (NOTEBOOKS / "ok.ipynb").read_bytes()
    text = (folder / "submission.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert doc["template"] == "custom"
    assert doc["parameters"] == {"n": 3, "factor": 1.5, "label": "demo"}
    # Unanswered questions are there, with their type and text beside their ids.
    assert doc["answers"] == {"open-data": None, "hosting": None}
    hosting = next(line for line in text.splitlines() if line.strip().startswith('"hosting"'))
    assert "on-premises | cloud" in hosting and "Hébergement ?" in hosting
    assert "not to run" in out


def test_a_notebook_without_parameters_cell_is_taken_as_it_is(
    workspace: Workspace, tmp_path: Path
) -> None:
    notebook = own_notebook(tmp_path / "ours.ipynb")
    code, _, err = cli(
        workspace, "new", "test-call", "-t", "custom", "--id", "ours", "--team", "T",
        "--notebook", str(notebook),
    )  # fmt: skip
    assert code == 0, err
    folder = workspace.submissions_dir / "test-call" / "ours"
    assert yaml.safe_load((folder / "submission.yaml").read_text())["parameters"] == {}
    report = validate(workspace, [folder])
    # Only the questionnaire is missing; the lack of phase tags is a note, not a problem.
    assert {p.field for p in report.problems} == {"answers.open-data", "answers.hosting"}
    assert any("no cell carries a phase tag" in note for note in report.notes)


def test_parameters_for_a_notebook_without_parameters_cell_are_refused(
    workspace: Workspace, make_submission: object, tmp_path: Path
) -> None:
    folder = workspace.submissions_dir / "test-call" / "ours"
    folder.mkdir(parents=True)
    own_notebook(folder / "notebook.ipynb")
    doc = {
        "id": "ours", "call": "test-call", "team": "T", "organisation": "O", "title": "X",
        "template": "custom", "parameters": {"n": 4},
        "answers": {"open-data": True, "hosting": "cloud"},
    }  # fmt: skip
    (folder / "submission.yaml").write_text(yaml.safe_dump(doc))
    report = validate(workspace, [folder])
    assert [(p.field, p.message) for p in report.problems] == [
        ("parameters", "the notebook has no cell tagged 'parameters', so it takes none (given: n)")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "custom"], "--notebook PATH"),
        (["-t", "ok", "--notebook", "NB"], "--notebook is for --template custom"),
        (["-t", "custom", "--notebook", "TXT"], "not a valid notebook"),
    ],
)
def test_new_custom_refuses_bad_input(
    workspace: Workspace, tmp_path: Path, args: list[str], message: str
) -> None:
    text = tmp_path / "notes.ipynb"
    text.write_text("not json")
    args = [{"NB": str(NOTEBOOKS / "ok.ipynb"), "TXT": str(text)}.get(a, a) for a in args]
    code, _, err = cli(workspace, "new", "test-call", "--id", "x", "--team", "T", *args)
    assert code == 2 and message in err, err
    assert not (workspace.submissions_dir / "test-call" / "x").exists()


@pytest.mark.kernel
def test_an_own_notebook_runs_before_the_questionnaire_is_answered(
    workspace: Workspace, tmp_path: Path
) -> None:
    notebook = own_notebook(tmp_path / "ours.ipynb")
    cli(workspace, "new", "test-call", "-t", "custom", "--id", "ours", "--team", "T",
        "--notebook", str(notebook))  # fmt: skip
    code, out, err = cli(workspace, "run", "test-call/ours", "--isolation", "process")
    assert code == 0, out + err
    assert "succeeded" in out
    assert "questionnaire not answered yet (open-data, hosting)" in err
    assert "no cell carries a phase tag" in err
