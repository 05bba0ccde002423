"""Bounded input: YAML aliases refused, size caps on what a team hands in, no file echoed.

Each test is a recipe that once worked against the workbench: a 702-byte YAML bomb, a
60 MB answer, a notebook of 100,000 cells, a notebook that is a link to someone else's
file. Every one is now a one-line error naming the file, exit code 2, nothing stored.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell

from tests.conftest import TEST_CALL, MakeSubmission, write_yaml
from workbench import bundles, submissions
from workbench.batch import plan_batch
from workbench.cli import main
from workbench.store import open_store
from workbench.workspace import Workspace

# Nine levels of nine aliases each: 9**9 strings once expanded, from 342 bytes.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _with_bomb(folder: Path, where: str) -> None:
    """Put the bomb in submission.yaml, as the value of an answer or of a parameter."""
    path = folder / "submission.yaml"
    nested = "".join(f"    {line}\n" for line in BOMB.splitlines())
    key = "answers:\n" if where == "answers" else "parameters:\n"
    text = path.read_text(encoding="utf-8").replace(key, f"{key}  bomb:\n{nested}", 1)
    path.write_text(text, encoding="utf-8")


def _invoke(workspace: Workspace, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-w", str(workspace.root), *args])
    return result.exit_code, result.output


def _stored_runs(workspace: Workspace) -> int:
    with open_store(workspace.db_url) as store:
        return len(store.runs(call_id="test-call"))


@pytest.mark.parametrize("where", ["answers", "parameters"])
def test_a_yaml_bomb_is_one_line_exit_2_and_runs_nothing(
    workspace: Workspace, make_submission: MakeSubmission, where: str
) -> None:
    folder = make_submission("bomb")
    _with_bomb(folder, where)
    code, output = _invoke(workspace, "validate", str(folder))
    assert code == 2, output
    lines = [line for line in output.splitlines() if "aliases" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{folder / 'submission.yaml'}: -: invalid YAML")
    assert "Traceback" not in output and "MemoryError" not in output
    code, output = _invoke(workspace, "run", "test-call/bomb")
    assert code == 2 and "aliases (*name) are not accepted" in output, output
    assert _stored_runs(workspace) == 0


def test_an_anchor_without_alias_is_plain_yaml(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    folder = make_submission("anchored")
    path = folder / "submission.yaml"
    path.write_text(path.read_text().replace("title:", "title: &t"), encoding="utf-8")
    code, output = _invoke(workspace, "validate", str(folder))
    assert code == 0, output


def test_a_bad_submission_never_stops_the_planning_of_a_batch(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission("good")
    _with_bomb(make_submission("bomb"), "answers")
    folded = make_submission("folder-for-a-file")
    (folded / "submission.yaml").unlink()
    (folded / "submission.yaml").mkdir()  # reading it raises, as any broken input may
    with open_store(workspace.db_url) as store:
        plan = plan_batch(workspace, store, "test-call")
    assert [job.submission.id for job in plan.jobs] == ["good"]
    invalid = dict(plan.invalid)
    assert set(invalid) == {"test-call/bomb", "test-call/folder-for-a-file"}
    assert "aliases" in str(invalid["test-call/bomb"][0])


def test_submission_yaml_over_its_cap(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_submission("big")
    size = (folder / "submission.yaml").stat().st_size
    monkeypatch.setattr(submissions, "MAX_SUBMISSION_BYTES", size - 1)
    code, output = _invoke(workspace, "validate", str(folder))
    assert code == 2
    assert f"submission.yaml: {size} bytes, more than the limit of {size - 1}" in output


def test_an_answer_over_its_cap_is_refused_and_never_received(
    workspace: Workspace,
    make_submission: MakeSubmission,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    call = {
        **TEST_CALL,
        "questionnaire": [
            *TEST_CALL["questionnaire"],
            {"id": "summary", "type": "text", "text": {"fr": "Résumé", "en": "Summary"}},
        ],
    }
    write_yaml(workspace.calls_dir / "test-call.yaml", call)
    answers = {"open-data": True, "hosting": "cloud", "summary": "x" * 200}
    folder = make_submission("long", answers=answers)
    bundle = bundles.pack_submission(workspace, folder, tmp_path / "long.zip").path
    shutil.rmtree(folder)  # the funder's side: nothing of this dossier yet
    monkeypatch.setattr(submissions, "MAX_ANSWER_CHARS", 100)
    with pytest.raises(bundles.BundleRefused) as refused:
        bundles.receive_bundle(workspace, bundle)
    assert "answers.summary: 200 characters, more than the limit of 100" in str(refused.value)
    assert "x" * 101 not in str(refused.value)
    assert not folder.exists()
    with open_store(workspace.db_url) as store:
        assert store.current_states("test-call") == {}


def test_a_notebook_over_its_byte_or_cell_cap(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_submission("cells")
    nb = nbformat.read(folder / "notebook.ipynb", as_version=4)
    nb.cells += [new_code_cell("pass") for _ in range(20)]
    nbformat.write(nb, folder / "notebook.ipynb")
    cells = len(nb.cells)
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_CELLS", cells - 1)
    code, output = _invoke(workspace, "validate", str(folder))
    assert code == 2
    assert f"notebook: notebook.ipynb: {cells} cells, more than the limit of {cells - 1}" in output
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_CELLS", cells)
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", 100)
    code, output = _invoke(workspace, "run", "test-call/cells")
    assert code == 2 and "bytes, more than the limit of 100" in output, output
    assert _stored_runs(workspace) == 0


def test_a_notebook_link_out_of_the_folder_is_refused_without_echo(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    other = make_submission("other-team")
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash-bytes:19000:0:99999:7:::\n")
    folder = make_submission("borrower")
    for target, name in ((other / "notebook.ipynb", "theirs.ipynb"), (secret, "shadow.ipynb")):
        os.symlink(target, folder / name)
        doc = (folder / "submission.yaml").read_text()
        doc = doc.replace("notebook: notebook.ipynb", "").replace(
            "title:", f"notebook: {name}\ntitle:"
        )
        (folder / "submission.yaml").write_text(doc)
        code, output = _invoke(workspace, "validate", str(folder))
        assert code == 2
        assert f"notebook: {name}: leaves the submission folder" in output
        assert "secret-hash" not in output
        doc = doc.replace(f"notebook: {name}\n", "")
        (folder / "submission.yaml").write_text(doc)


def test_a_notebook_that_is_not_json_is_not_quoted(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    folder = make_submission("garbled")
    (folder / "notebook.ipynb").write_text("root:$6$secret-hash-bytes:19000\n")
    code, output = _invoke(workspace, "validate", str(folder))
    assert code == 2
    assert "not a valid notebook (not JSON)" in output and "secret-hash" not in output


def test_caps_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text()
    for value in (
        submissions.MAX_SUBMISSION_BYTES,
        submissions.MAX_ANSWER_CHARS,
        submissions.MAX_NOTEBOOK_BYTES,
        submissions.MAX_NOTEBOOK_CELLS,
    ):
        assert f"{value:,}" in doc
