"""The store's audit log is a dossier's state: drafts stay the team's until handed in."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from tests.conftest import MakeSubmission
from workbench import jury
from workbench.dossiers import decide, history
from workbench.errors import NotFoundError
from workbench.results import call_results
from workbench.runner.records import Fingerprint, RunRecord, new_run_id
from workbench.store import open_store
from workbench.submissions import load_submission, new_submission
from workbench.workspace import Workspace


def _stored_run(workspace: Workspace, key: str) -> None:
    """Register a submission and store one finished run, without a kernel."""
    folder = workspace.submission_dir(key)
    sub = load_submission(folder)
    now = dt.datetime.now(dt.UTC)
    record = RunRecord(
        run_id=new_run_id(),
        submission=key,
        call=sub.call,
        status="succeeded",
        started_at=now,
        finished_at=now,
        metrics={"n_predictions": 3.0},
        fingerprint=Fingerprint(
            notebook_sha256="a" * 64,
            parameters_sha256="b" * 64,
            python="3.11",
            packages_sha256="c" * 64,
            kernel="python3",
        ),
        isolation="none",
        notebook="nb.ipynb",
        run_dir="run",
    )
    with open_store(workspace.db_url) as store:
        store.register(workspace.call(sub.call), sub)
        store.add_run(record)


def test_a_new_folder_is_a_draft_until_it_is_moved(workspace: Workspace) -> None:
    folder = new_submission(workspace, "test-call", "ok", "fresh", "Team")
    assert "state" not in yaml.safe_load((folder / "submission.yaml").read_text())
    _stored_run(workspace, "test-call/fresh")
    with open_store(workspace.db_url) as store:
        assert call_results(store, "test-call") == []  # drafts never reach jurors
        (draft,) = call_results(store, "test-call", drafts=True)
        assert draft.state == "draft"
    decide(workspace, "test-call/fresh", "submitted", actor="instructrice")
    with open_store(workspace.db_url) as store:
        (row,) = call_results(store, "test-call")
    assert row.state == "submitted"


def test_an_older_state_key_is_read_once_then_the_log_holds_the_state(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    folder = make_submission(state="submitted")
    decide(workspace, "test-call/team-a", "in_review", actor="instructrice")
    with open_store(workspace.db_url) as store:
        log = history(store, "test-call/team-a")
    assert [(t.actor, t.from_state, t.to_state) for t in log] == [
        ("instructrice", "submitted", "in_review")
    ]
    # Editing the YAML afterwards changes nothing: the store and the file cannot disagree.
    doc = yaml.safe_load((folder / "submission.yaml").read_text())
    (folder / "submission.yaml").write_text(yaml.safe_dump({**doc, "state": "draft"}))
    _stored_run(workspace, "test-call/team-a")
    with open_store(workspace.db_url) as store:
        (row,) = call_results(store, "test-call")
        assert row.state == "in_review"
        assert len(history(store, "test-call/team-a")) == 1


def test_a_later_state_cannot_be_declared(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    from workbench.validation import validate

    folder = make_submission(state="accepted")
    (problem,) = validate(workspace, [folder]).problems
    assert problem.field == "state" and "workbench decide" in problem.message


def test_drafts_cannot_be_scored_nor_counted_for_the_jury(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission("handed-in")
    make_submission("draft", state=None)
    _stored_run(workspace, "test-call/handed-in")
    _stored_run(workspace, "test-call/draft")
    call = workspace.call("test-call")
    _juror, token = jury.add_juror(workspace, "test-call", "Alice")
    with open_store(workspace.db_url) as store:
        with pytest.raises(NotFoundError, match="draft"):
            jury.save_score(store, call, token, "test-call/draft", {"benefit": 1, "frugality": 1})
        jury.save_score(store, call, token, "test-call/handed-in", {"benefit": 1, "frugality": 1})
        (alice,) = jury.store_progress(store, "test-call")
    assert (alice.scored, alice.to_score) == (1, 1)


def test_validate_notes_an_older_state_key(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    from workbench.validation import validate

    folder = make_submission(state="submitted")
    report = validate(workspace, [folder])
    assert report.ok
    assert any("state: 'submitted' is read only while" in note for note in report.notes)
    (fresh,) = [new_submission(workspace, "test-call", "ok", "fresh", "Team")]
    assert not any("state:" in note for note in validate(workspace, [fresh]).notes)
