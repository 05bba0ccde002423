"""Assigning jurors to dossiers: the plan, by hand, rapporteurs, reminders, renewed links."""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import combinations, product
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from tests.conftest import MakeSubmission
from tests.test_queries import counting
from workbench import assignments, jury
from workbench.assignments import plan
from workbench.cli import main
from workbench.errors import InputError, NotFoundError
from workbench.jury import AccessDenied, NotAssigned, add_juror, authenticate, save_score
from workbench.store import open_store
from workbench.submissions import load_submission
from workbench.workspace import Workspace

SCORE = {"benefit": 3, "frugality": 4}


def _register(workspace: Workspace, make_submission: MakeSubmission, *ids: str, **kw: Any) -> None:
    with open_store(workspace.db_url) as store:
        for sub_id in ids:
            folder = make_submission(sub_id, **kw)
            store.register(workspace.call("test-call"), load_submission(folder))


def _invoke(workspace: Workspace, *args: str) -> Any:
    return CliRunner().invoke(main, ["-w", str(workspace.root), *args])


def _loads(pairs: Any, jurors: Any) -> Counter[int]:
    loads: Counter[int] = Counter(dict.fromkeys(jurors, 0))
    loads.update(j for j, _ in pairs)
    return loads


# ---------------------------------------------------------------- the plan


def test_the_plan_is_balanced_respects_conflicts_and_fills_only_missing_places() -> None:
    rng = random.Random(16)
    for _case in range(60):
        n_jurors = rng.randint(3, 9)
        per = rng.randint(1, min(3, n_jurors - 2))
        keys = [f"c/s{i:02d}" for i in range(rng.randint(1, 25))]
        # Sparse conflicts (at most one per juror) always leave an even assignment possible.
        conflicts = {
            j: ([rng.choice(keys)] if rng.random() < 0.5 else []) for j in range(1, n_jurors + 1)
        }
        pairs = plan(keys, conflicts, set(), per)
        by_key = Counter(key for _, key in pairs)
        assert all(by_key[key] == per for key in keys)
        assert len(set(pairs)) == len(pairs)
        assert not [(j, key) for j, key in pairs if key in conflicts[j]]
        loads = _loads(pairs, conflicts)
        assert max(loads.values()) - min(loads.values()) <= 1, (conflicts, pairs)
        # The same inputs give the same plan; a second run adds nothing.
        assert plan(keys, conflicts, set(), per) == pairs
        assert plan(keys, conflicts, set(pairs), per) == []
        # New dossiers: earlier pairs kept, only the new ones' places filled, still even.
        more = [f"c/t{i:02d}" for i in range(rng.randint(1, 10))]
        added = plan(keys + more, conflicts, set(pairs), per)
        assert {key for _, key in added} == set(more)
        assert Counter(key for _, key in added) == dict.fromkeys(more, per)
        loads = _loads(set(pairs) | set(added), conflicts)
        assert max(loads.values()) - min(loads.values()) <= 1


def test_the_plan_is_as_even_as_any_assignment_when_conflicts_are_dense() -> None:
    """Against every possible assignment of small calls with many conflicts: the plan's
    loads are the most even (least sum of squares), within one whenever any is."""
    rng = random.Random(1616)
    for _case in range(80):
        jurors = list(range(1, rng.randint(3, 5) + 1))
        keys = [f"c/s{i}" for i in range(rng.randint(2, 5))]
        per = rng.randint(1, 2)
        conflicts = {j: [k for k in keys if rng.random() < 0.35] for j in jurors}
        choices = [
            list(combinations([j for j in jurors if k not in conflicts[j]], per)) for k in keys
        ]
        if any(not c for c in choices):
            with pytest.raises(InputError):
                plan(keys, conflicts, set(), per)
            continue
        possible = []
        for pick in product(*choices):
            loads = _loads([(j, k) for k, js in zip(keys, pick, strict=True) for j in js], jurors)
            possible.append(
                (sum(n * n for n in loads.values()), max(loads.values()) - min(loads.values()))
            )
        loads = _loads(plan(keys, conflicts, set(), per), jurors)
        assert sum(n * n for n in loads.values()) == min(p[0] for p in possible)
        if min(p[1] for p in possible) <= 1:
            assert max(loads.values()) - min(loads.values()) <= 1


def test_the_plan_moves_work_along_a_chain_to_stay_even() -> None:
    # Greedy alone leaves juror 3 with nothing; evening it out takes two moves: c from 2 to
    # 3, then a from 1 to 2 (1 alone may take b).
    conflicts = {1: ["c/c"], 2: ["c/b"], 3: ["c/a", "c/b"]}
    pairs = plan(["c/a", "c/b", "c/c"], conflicts, set(), 1)
    assert sorted(_loads(pairs, conflicts).values()) == [1, 1, 1]
    assert set(pairs) == {(2, "c/a"), (1, "c/b"), (3, "c/c")}


def test_the_plan_balances_new_places_against_existing_loads() -> None:
    conflicts: dict[int, list[str]] = {1: [], 2: [], 3: []}
    current = {(1, "c/a"), (1, "c/b"), (2, "c/a")}
    pairs = plan(["c/a", "c/b", "c/c", "c/d"], conflicts, current, 2)
    loads = _loads(current | set(pairs), conflicts)
    assert sorted(loads.values()) == [2, 3, 3]
    assert {key for _, key in pairs} == {"c/b", "c/c", "c/d"}


def test_not_enough_eligible_jurors_is_one_clear_line() -> None:
    conflicts = {1: ["c/b"], 2: ["c/b"], 3: []}
    with pytest.raises(InputError) as refused:
        plan(["c/a", "c/b"], conflicts, set(), 2)
    assert str(refused.value).splitlines() == [
        "not enough jurors without a conflict of interest for c/b (1 of 2): add jurors or ask "
        "for fewer per submission; nothing was assigned"
    ]


# ---------------------------------------------------------------- with the store and the CLI


@pytest.fixture
def jury_call(workspace: Workspace, make_submission: MakeSubmission) -> dict[str, str]:
    _register(workspace, make_submission, "a", "b", "c", "d")
    _register(workspace, make_submission, "draft", state="draft")
    tokens = {}
    for name, conflicts in (("Ann", ["a"]), ("Bob", []), ("Cy", ["b"])):
        tokens[name] = add_juror(workspace, "test-call", name, conflicts)[1]
    return tokens


def test_jury_assign_fills_every_dossier_evenly_and_keeps_what_it_gave(
    workspace: Workspace, make_submission: MakeSubmission, jury_call: dict[str, str]
) -> None:
    first = _invoke(
        workspace, "jury", "assign", "test-call", "--per-submission", "2", "--by", "Lou"
    )
    assert first.exit_code == 0, first.output
    assert "8 change(s)" in first.output and "Ann 3, Bob 3, Cy 2" in first.output
    with open_store(workspace.db_url) as store:
        given = store.current_assignments("test-call")
        assert ("test-call/draft" not in {k for _, k in given}) and len(given) == 8
        names = {row.id: row.name for row in store.jurors("test-call")}
        assert ("Ann", "test-call/a") not in {(names[j], k) for j, k in given}
        assert ("Cy", "test-call/b") not in {(names[j], k) for j, k in given}
    again = _invoke(workspace, "jury", "assign", "test-call", "--per-submission", "2")
    assert again.exit_code == 0 and "nothing to change" in again.output
    _register(workspace, make_submission, "e")  # a new dossier arrives
    later = _invoke(workspace, "jury", "assign", "test-call", "--per-submission", "2")
    assert later.exit_code == 0 and "2 change(s)" in later.output
    with open_store(workspace.db_url) as store:
        now = store.current_assignments("test-call")
        assert given < now and {k for _, k in now - given} == {"test-call/e"}
        loads = Counter(j for j, _ in now)
        assert max(loads.values()) - min(loads.values()) <= 1
    too_many = _invoke(workspace, "jury", "assign", "test-call", "--per-submission", "3")
    assert too_many.exit_code == 2
    assert "error: not enough jurors" in too_many.output and "test-call/a (2 of 3)" in (
        too_many.output
    )
    with open_store(workspace.db_url) as store:
        assert store.current_assignments("test-call") == now  # nothing stored


def test_two_funders_assigning_at_once_fill_each_place_once(
    workspace: Workspace, jury_call: dict[str, str]
) -> None:
    import threading

    errors: list[BaseException] = []

    def assign(actor: str) -> None:
        try:
            assignments.auto_assign(workspace, "test-call", 2, actor)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=assign, args=(name,)) for name in ("Lou", "Max")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(workspace.db_url) as store:
        history = store.assignment_history("test-call")
        assert Counter(row.submission_key for row in history) == {
            f"test-call/{k}": 2 for k in "abcd"
        }
        assert len({row.actor for row in history}) == 1  # one plan filled them all


def test_assigning_by_hand_refuses_conflicts_and_drafts_and_is_logged(
    workspace: Workspace, jury_call: dict[str, str]
) -> None:
    base = ("jury", "assign", "test-call")
    added = _invoke(workspace, *base, "--juror", "Bob", "--submission", "a", "--by", "Lou")
    assert added.exit_code == 0 and "assigned" in added.output and "1 change(s)" in added.output
    twice = _invoke(workspace, *base, "--juror", "Bob", "--submission", "a")
    assert twice.exit_code == 0 and "nothing to change" in twice.output
    conflict = _invoke(workspace, *base, "--juror", "Ann", "--submission", "a")
    assert conflict.exit_code == 2 and "Ann declared a conflict of interest" in conflict.output
    draft = _invoke(workspace, *base, "--juror", "Bob", "--submission", "draft")
    assert draft.exit_code == 2 and "is a draft" in draft.output
    nobody = _invoke(workspace, *base, "--juror", "Zoé", "--submission", "a")
    assert nobody.exit_code == 2 and "no juror 'Zoé'" in nobody.output
    half = _invoke(workspace, *base, "--juror", "Bob")
    assert half.exit_code == 2 and "needs both" in half.output
    removed = _invoke(workspace, *base, "--juror", "Bob", "--submission", "a", "--remove")
    assert removed.exit_code == 0 and "withdrawn" in removed.output
    with open_store(workspace.db_url) as store:
        assert store.current_assignments("test-call") == set()
        log = jury.assignment_log(store, "test-call")
    assert [(e.submission, e.juror, e.action, e.origin, e.actor) for e in log] == [
        ("test-call/a", "Bob", "assigned", "manual", "Lou"),
        ("test-call/a", "Bob", "withdrawn", "manual", log[1].actor),
    ]
    assert log[0].at.tzname() in ("CET", "CEST") and log[0].at <= log[1].at
    shown = _invoke(workspace, "jury", "log", "test-call")
    assert shown.exit_code == 0 and "withdrawn" in shown.output and "Lou" in shown.output


def test_a_rapporteur_must_be_assigned_and_replacing_one_keeps_the_history(
    workspace: Workspace, jury_call: dict[str, str]
) -> None:
    for name in ("Bob", "Cy"):
        _invoke(workspace, "jury", "assign", "test-call", "--juror", name, "--submission", "a")
    refused = _invoke(workspace, "jury", "rapporteur", "test-call", "b", "Bob")
    assert refused.exit_code == 2 and "Bob is not assigned to test-call/b" in refused.output
    assert _invoke(workspace, "jury", "rapporteur", "test-call", "a", "Bob").exit_code == 0
    replaced = _invoke(workspace, "jury", "rapporteur", "test-call", "a", "Cy", "--by", "Lou")
    assert replaced.exit_code == 0 and "rapporteur" in replaced.output
    withdraw = _invoke(
        workspace, "jury", "assign", "test-call", "--juror", "Cy", "--submission", "a", "--remove"
    )
    assert withdraw.exit_code == 2 and "Cy is the rapporteur of test-call/a" in withdraw.output
    with open_store(workspace.db_url) as store:
        names = {row.id: row.name for row in store.jurors("test-call")}
        assert names[store.rapporteurs("test-call")["test-call/a"]] == "Cy"
        log = jury.assignment_log(store, "test-call")
    assert [(e.juror, e.action) for e in log] == [
        ("Bob", "assigned"),
        ("Cy", "assigned"),
        ("Bob", "rapporteur"),
        ("Cy", "rapporteur"),
    ]
    listed = json.loads(_invoke(workspace, "jury", "list", "test-call", "--json").stdout)
    by_key = {s["submission"]: s for s in listed["submissions"]}
    assert by_key["test-call/a"]["rapporteur"] == "Cy"


def test_jury_list_json_and_remind_follow_the_assignments_and_scores(
    workspace: Workspace, jury_call: dict[str, str]
) -> None:
    assert _invoke(workspace, "jury", "assign", "test-call", "--per-submission", "2").exit_code == 0
    call = workspace.call("test-call")
    with open_store(workspace.db_url) as store:
        ann = authenticate(store, "test-call", jury_call["Ann"])
        mine = sorted(store.juror_assignments("test-call", ann.id))
        assert len(mine) == 3
        save_score(store, call, jury_call["Ann"], mine[0], SCORE)
        save_score(store, call, jury_call["Ann"], mine[0], SCORE)  # saved twice: one review
    listed = _invoke(workspace, "jury", "list", "test-call", "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert set(data) == {"call", "jurors", "submissions"}
    first = data["jurors"][0]
    assert first == {
        "id": ann.id,
        "name": "Ann",
        "assigned": 3,
        "done": 1,
        "scored": 1,
        "conflicts": ["test-call/a"],
    }
    subs = {s["submission"]: s for s in data["submissions"]}
    assert sorted(subs) == ["test-call/a", "test-call/b", "test-call/c", "test-call/d"]
    assert all(len(s["assigned_jurors"]) == 2 for s in subs.values())
    assert subs[mine[0]]["reviews_done"] == 1 and "Ann" in subs[mine[0]]["assigned_jurors"]
    assert sum(s["reviews_done"] for s in subs.values()) == 1
    table = _invoke(workspace, "jury", "list", "test-call")
    assert table.exit_code == 0 and "1/3" in table.output
    reminded = json.loads(_invoke(workspace, "jury", "remind", "test-call", "--json").stdout)
    todo = {r["name"]: r["to_score"] for r in reminded["jurors"]}
    assert todo["Ann"] == mine[1:]
    assert "test-call/draft" not in {key for keys in todo.values() for key in keys}
    assert sum(len(v) for v in todo.values()) == 8 - 1
    text = _invoke(workspace, "jury", "remind", "test-call")
    assert text.exit_code == 0 and "Ann (#" in text.output and "2 to score" in text.output
    assert jury_call["Ann"] not in text.output and "jury renew" in text.output


def test_assigned_only_refuses_to_score_any_other_dossier(
    workspace: Workspace, jury_call: dict[str, str]
) -> None:
    call = workspace.call("test-call")
    review = call.review.model_copy(update={"assigned_only": True})
    strict = call.model_copy(update={"review": review})
    _invoke(workspace, "jury", "assign", "test-call", "--juror", "Bob", "--submission", "c")
    with open_store(workspace.db_url) as store:
        save_score(store, call, jury_call["Bob"], "test-call/d", SCORE)  # open call: any dossier
        save_score(store, strict, jury_call["Bob"], "test-call/c", SCORE)
        before = len(store.scores(call_id="test-call"))
        with pytest.raises(NotAssigned, match="Bob is not assigned to test-call/d"):
            save_score(store, strict, jury_call["Bob"], "test-call/d", SCORE)
        assert len(store.scores(call_id="test-call")) == before


def test_renew_revokes_the_old_link(workspace: Workspace, jury_call: dict[str, str]) -> None:
    old = jury_call["Bob"]
    renewed = _invoke(workspace, "jury", "renew", "test-call", "Bob", "--port", "9000")
    assert renewed.exit_code == 0, renewed.output
    link = renewed.stdout.strip()
    assert link.startswith("http://127.0.0.1:9000/?token=") and old not in link
    new = link.split("token=", 1)[1]
    with open_store(workspace.db_url) as store:
        assert authenticate(store, "test-call", new).name == "Bob"
        with pytest.raises(AccessDenied):
            authenticate(store, "test-call", old)
        with pytest.raises(AccessDenied):
            save_score(store, workspace.call("test-call"), old, "test-call/a", SCORE)
        bob = authenticate(store, "test-call", new)
        tokens = store.tokens(bob.id)
        assert [t.revoked_at is not None for t in tokens] == [True, False]
    unknown = _invoke(workspace, "jury", "renew", "test-call", "Nobody")
    assert unknown.exit_code == 2 and "no juror" in unknown.output


def test_unknown_calls_and_submissions_are_refused(
    workspace: Workspace, jury_call: dict[str, str]
) -> None:
    for args in (
        ("jury", "assign", "nope", "--per-submission", "1"),
        ("jury", "log", "nope"),
        ("jury", "remind", "nope"),
        ("jury", "list", "nope", "--json"),
    ):
        result = _invoke(workspace, *args)
        assert result.exit_code == 2 and "unknown call" in result.output, args
    with pytest.raises(NotFoundError):
        assignments.assign_by_hand(workspace, "test-call", "Bob", "zz", "Lou")
    neither = _invoke(workspace, "jury", "assign", "test-call")
    assert neither.exit_code == 2 and "--per-submission" in neither.output


def _read_everything(store: Any, call: Any, juror: Any) -> None:
    assignments.overview(store, "test-call")
    assignments.reminders(store, "test-call")
    assignments.assignment_log(store, "test-call")
    jury.juror_view(store, call, juror)
    blind = call.model_copy(update={"review": call.review.model_copy(update={"blind": True})})
    jury.juror_view(store, blind, juror)


def test_the_jurys_reads_do_not_grow_with_the_call(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    counts = {}
    for n in (3, 12):
        ids = [f"n{n}-{i}" for i in range(n)]
        _register(workspace, make_submission, *ids)
        if n == 3:
            for name in ("Ann", "Bob", "Cy"):
                add_juror(workspace, "test-call", name)
        assignments.auto_assign(workspace, "test-call", 2, "Lou")
        call = workspace.call("test-call")
        with open_store(workspace.db_url) as store:
            juror = jury._juror(store.jurors("test-call")[0])
            _read_everything(store, call, juror)  # warm up
            with counting(Engine) as statements:
                _read_everything(store, call, juror)
            counts[n] = len(statements)
    assert counts[3] == counts[12]
