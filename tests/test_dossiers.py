"""Dossier states: the lifecycle, its audit log, and what batches do with drafts."""

from __future__ import annotations

import itertools
import threading

import pytest
from click.testing import CliRunner

from tests.conftest import MakeSubmission
from workbench.cli import main
from workbench.dossiers import STATES, TRANSITIONS, decide, history
from workbench.errors import InputError
from workbench.store import open_store
from workbench.workspace import Workspace


def test_the_lifecycle_to_acceptance_is_logged(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission(state="draft")
    steps = [
        ("submitted", ""),
        ("in_review", ""),
        ("submitted", "Please add the data licence."),
        ("in_review", ""),
        ("accepted", "Clear gain at low energy."),
    ]
    for to_state, reason in steps:
        decide(workspace, "test-call/team-a", to_state, actor="instructrice", reason=reason)
    store = open_store(workspace.db_url)
    try:
        log = history(store, "test-call/team-a")
    finally:
        store.close()
    assert [(t.from_state, t.to_state) for t in log] == [
        ("draft", "submitted"),
        ("submitted", "in_review"),
        ("in_review", "submitted"),
        ("submitted", "in_review"),
        ("in_review", "accepted"),
    ]
    assert log[2].reason == "Please add the data licence."
    assert {t.actor for t in log} == {"instructrice"}
    assert all(a.at <= b.at for a, b in itertools.pairwise(log))


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "accepted"),  # a submitted dossier must be reviewed first
        ([], "rejected"),
        (["in_review", "accepted"], "in_review"),  # a decision is final
        (["in_review", "rejected"], "submitted"),
        (["in_review", "dismissed"], "accepted"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    workspace: Workspace, make_submission: MakeSubmission, path: list[str], illegal: str
) -> None:
    make_submission()  # declared `submitted`
    for state in path:
        decide(workspace, "test-call/team-a", state, actor="a")
    with pytest.raises(InputError, match="cannot go from"):
        decide(workspace, "test-call/team-a", illegal, actor="a")
    store = open_store(workspace.db_url)
    try:
        assert len(history(store, "test-call/team-a")) == len(path)
    finally:
        store.close()


def test_sending_back_needs_a_message(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission()
    decide(workspace, "test-call/team-a", "in_review", actor="a")
    with pytest.raises(InputError, match="needs a message"):
        decide(workspace, "test-call/team-a", "submitted", actor="a")


def test_two_officials_deciding_at_once_cannot_both_move_from_one_state(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission()  # declared `submitted`
    targets = ["in_review", "draft"] * 3  # each is legal from `submitted`, none from the other
    barrier = threading.Barrier(len(targets))
    done: list[str] = []
    refused: list[BaseException] = []

    def official(to_state: str) -> None:
        barrier.wait()
        try:
            decide(workspace, "test-call/team-a", to_state, actor=f"official {to_state}")
            done.append(to_state)
        except InputError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=official, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open_store(workspace.db_url) as store:
        log = history(store, "test-call/team-a")
    # The first decision wins; every later one reads the state it left, from which neither
    # target is allowed, so the dossier moved exactly once.
    assert len(done) == 1 and len(refused) == len(targets) - 1
    assert [(t.from_state, t.to_state) for t in log] == [("submitted", done[0])]
    assert all("cannot go from" in str(exc) for exc in refused)


def test_every_state_is_reachable_from_draft() -> None:
    seen, todo = {"draft"}, ["draft"]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(STATES)


def test_cli_decide_and_unknown_state(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    make_submission()
    runner = CliRunner()
    ok = runner.invoke(
        main, ["-w", str(workspace.root), "decide", "test-call/team-a", "in_review", "--by", "Lou"]
    )
    assert ok.exit_code == 0 and "submitted -> in_review by Lou" in ok.output
    bad = runner.invoke(main, ["-w", str(workspace.root), "decide", "test-call/team-a", "accepted"])
    assert bad.exit_code == 0
    again = runner.invoke(
        main, ["-w", str(workspace.root), "decide", "test-call/team-a", "in_review"]
    )
    assert again.exit_code == 2 and "cannot go from 'accepted' to 'in_review'" in again.stderr


@pytest.mark.kernel
def test_a_draft_is_not_run_by_batch_until_submitted(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    from workbench.batch import run_batch

    make_submission(state="draft")
    first = run_batch(workspace, "test-call")
    assert first.records == [] and first.plan.skipped == [
        ("test-call/team-a", "draft: not submitted yet")
    ]
    decide(workspace, "test-call/team-a", "submitted", actor="team")
    second = run_batch(workspace, "test-call")
    assert [r.status for r in second.records] == ["succeeded"]
    result = CliRunner().invoke(main, ["-w", str(workspace.root), "stats", "test-call", "--json"])
    import json

    usage = json.loads(result.stdout)
    assert usage["templates"] == {"ok": 1} and usage["runs"] == 1
    energy = second.records[0].energy
    assert energy is not None
    assert usage["runs_measured"] == (1 if energy.measured else 0)
