"""The jury's tables through the store: tokens renewed, assignments, rapporteurs and
syntheses appended, the current row being each key's latest."""

from __future__ import annotations

from pathlib import Path

from tests.test_store import CALL, SUB
from workbench.store import AssignmentChange, open_store


def test_a_renewed_token_revokes_the_old_one_and_keeps_its_history(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.register(CALL, SUB)
        ada = store.add_juror(CALL, "Ada", "a" * 64, [])
        store.renew_token(ada.id, "b" * 64)
        assert store.juror_by_token("a" * 64) is None
        renewed = store.juror_by_token("b" * 64)
        assert renewed is not None and renewed.id == ada.id
        tokens = store.tokens(ada.id)
        assert [t.token_sha256[0] for t in tokens] == ["a", "b"]
        assert tokens[0].revoked_at is not None and tokens[1].revoked_at is None


def test_assignments_are_appended_and_the_latest_row_of_a_pair_counts(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.register(CALL, SUB)
        ada = store.add_juror(CALL, "Ada", "a" * 64, [])
        bob = store.add_juror(CALL, "Bob", "b" * 64, [])
        store.add_assignments(
            CALL.id,
            [AssignmentChange(SUB.key, ada.id, True), AssignmentChange(SUB.key, bob.id, True)],
            origin="auto",
            actor="officer",
        )
        store.add_assignments(
            CALL.id, [AssignmentChange(SUB.key, bob.id, False)], origin="manual", actor="officer"
        )
        assert store.current_assignments(CALL.id) == {(ada.id, SUB.key)}
        history = store.assignment_history(CALL.id)
        assert [(r.juror_id, r.assigned, r.origin) for r in history] == [
            (ada.id, True, "auto"),
            (bob.id, True, "auto"),
            (bob.id, False, "manual"),
        ]


def test_rapporteurs_and_syntheses_keep_their_history(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.register(CALL, SUB)
        ada = store.add_juror(CALL, "Ada", "a" * 64, [])
        bob = store.add_juror(CALL, "Bob", "b" * 64, [])
        store.set_rapporteur(CALL.id, SUB.key, ada.id, actor="officer")
        store.set_rapporteur(CALL.id, SUB.key, bob.id, actor="officer")
        assert store.rapporteurs(CALL.id) == {SUB.key: bob.id}
        assert len(store.rapporteur_history(CALL.id)) == 2
        store.add_synthesis(CALL.id, SUB.key, bob.id, "first draft", "accepted")
        store.add_synthesis(CALL.id, SUB.key, bob.id, "after the debate", "rejected")
        rows = store.syntheses(CALL.id, SUB.key)
        assert [(r.text, r.proposed_decision) for r in rows] == [
            ("first draft", "accepted"),
            ("after the debate", "rejected"),
        ]


def test_a_score_carries_a_private_note_and_a_message_to_the_team(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.register(CALL, SUB)
        ada = store.add_juror(CALL, "Ada", "a" * 64, [])
        store.add_score(ada.id, SUB.key, {"benefit": 4}, "for the jury", 3.5, "for the team")
        (row,) = store.scores(call_id=CALL.id)
        assert (row.comment, row.message) == ("for the jury", "for the team")
