"""The store's queries for a call's jury: jurors and their tokens, scores, assignments,
rapporteurs and syntheses (the rules they serve are in `workbench.jury`).

Every table here is appended to: a score, an assignment, a rapporteur or a synthesis that
changes is a new row, and the current one is the latest row of its key. Only a token's
revocation time is written once on an existing row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import select, update

from workbench.tables import (
    AssignmentRow,
    CallRow,
    JurorRow,
    JurorTokenRow,
    RapporteurRow,
    ScoreRow,
    SubmissionRow,
    SynthesisRow,
    _utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workbench.calls import Call


class AssignmentChange(NamedTuple):
    """One row to append to the assignments: `assigned` false withdraws the juror."""

    submission_key: str
    juror_id: int
    assigned: bool


class JuryQueries:
    """Mixed into `Store`, which provides the session and the call's registration."""

    def session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def register(self, call: Call, sub: Any = None) -> None:
        raise NotImplementedError

    # Jurors and their tokens
    def add_juror(self, call: Call, name: str, token_sha256: str, conflicts: list[str]) -> JurorRow:
        self.register(call)
        with self.session() as s:
            row = JurorRow(
                call_id=call.id, name=name, token_sha256=token_sha256, conflicts=conflicts
            )
            s.add(row)
            s.flush()
            s.add(JurorTokenRow(juror_id=row.id, token_sha256=token_sha256))
            return row

    def juror(self, juror_id: int) -> JurorRow | None:
        with self.session() as s:
            return s.get(JurorRow, juror_id)

    def juror_by_token(self, token_sha256: str) -> JurorRow | None:
        """The juror holding this token, None for an unknown or revoked one."""
        with self.session() as s:
            query = (
                select(JurorRow)
                .join(JurorTokenRow, JurorTokenRow.juror_id == JurorRow.id)
                .where(
                    JurorTokenRow.token_sha256 == token_sha256,
                    JurorTokenRow.revoked_at.is_(None),
                )
            )
            return s.scalar(query)

    def renew_token(self, juror_id: int, token_sha256: str) -> None:
        """Revoke every live token of the juror and give them this one, in one transaction."""
        with self.session() as s:
            s.execute(
                update(JurorTokenRow)
                .where(JurorTokenRow.juror_id == juror_id, JurorTokenRow.revoked_at.is_(None))
                .values(revoked_at=_utcnow())
            )
            s.add(JurorTokenRow(juror_id=juror_id, token_sha256=token_sha256))

    def tokens(self, juror_id: int) -> list[JurorTokenRow]:
        """A juror's tokens (hashes), oldest first, revoked ones included."""
        with self.session() as s:
            query = (
                select(JurorTokenRow)
                .where(JurorTokenRow.juror_id == juror_id)
                .order_by(JurorTokenRow.id)
            )
            return list(s.scalars(query))

    def jurors(self, call_id: str) -> list[JurorRow]:
        with self.session() as s:
            query = select(JurorRow).where(JurorRow.call_id == call_id).order_by(JurorRow.id)
            return list(s.scalars(query))

    # Scores
    def add_score(
        self,
        juror_id: int,
        submission_key: str,
        values: dict[str, Any],
        comment: str,
        weighted_total: float,
        message: str = "",
    ) -> ScoreRow:
        """Append a score row; earlier rows stay as the history. `comment` is the private
        note for the jury, `message` the words meant for the team."""
        with self.session() as s:
            row = ScoreRow(
                juror_id=juror_id,
                submission_key=submission_key,
                values=values,
                comment=comment,
                message=message,
                weighted_total=weighted_total,
            )
            s.add(row)
            s.flush()
            return row

    def scores(
        self,
        call_id: str | None = None,
        submission_key: str | None = None,
        juror_id: int | None = None,
    ) -> list[ScoreRow]:
        """Score rows in the order they were saved."""
        query = select(ScoreRow).order_by(ScoreRow.id)
        if call_id:
            query = query.join(JurorRow, JurorRow.id == ScoreRow.juror_id).where(
                JurorRow.call_id == call_id
            )
        if submission_key:
            query = query.where(ScoreRow.submission_key == submission_key)
        if juror_id is not None:
            query = query.where(ScoreRow.juror_id == juror_id)
        with self.session() as s:
            return list(s.scalars(query))

    # Assignments
    def add_assignments(
        self, call_id: str, changes: Iterable[AssignmentChange], *, origin: str, actor: str
    ) -> list[AssignmentRow]:
        """Append assignment changes in one transaction (all or none)."""
        fixed = list(changes)
        return self.add_planned_assignments(
            call_id, lambda _current: fixed, origin=origin, actor=actor
        )

    def add_planned_assignments(
        self,
        call_id: str,
        make: Callable[[set[tuple[int, str]]], Iterable[AssignmentChange]],
        *,
        origin: str,
        actor: str,
    ) -> list[AssignmentRow]:
        """Append the changes `make(current pairs)` returns, read and written in one
        transaction: two funders assigning at once cannot both fill the same places.
        `make` raises to refuse, and then nothing is written."""
        with self.session() as s:
            # Locking the call's row queues concurrent plans on PostgreSQL; SQLite's
            # BEGIN IMMEDIATE already serialises the whole transaction.
            s.get(CallRow, call_id, with_for_update=True)
            query = (
                select(AssignmentRow.juror_id, AssignmentRow.submission_key, AssignmentRow.assigned)
                .where(AssignmentRow.call_id == call_id)
                .order_by(AssignmentRow.id)
            )
            current = _assigned_now(((j, key), a) for j, key, a in s.execute(query))
            rows = [
                AssignmentRow(
                    call_id=call_id,
                    submission_key=change.submission_key,
                    juror_id=change.juror_id,
                    assigned=change.assigned,
                    origin=origin,
                    actor=actor,
                )
                for change in make(current)
            ]
            s.add_all(rows)
            s.flush()
            return rows

    def assignment_history(self, call_id: str) -> list[AssignmentRow]:
        """Every assignment change of a call, oldest first."""
        with self.session() as s:
            query = (
                select(AssignmentRow)
                .where(AssignmentRow.call_id == call_id)
                .order_by(AssignmentRow.id)
            )
            return list(s.scalars(query))

    def current_assignments(self, call_id: str) -> set[tuple[int, str]]:
        """The (juror id, submission key) pairs assigned now: each pair's latest row."""
        history = self.assignment_history(call_id)
        return _assigned_now(((row.juror_id, row.submission_key), row.assigned) for row in history)

    def juror_assignments(self, call_id: str, juror_id: int) -> set[str]:
        """The submission keys a juror is assigned to now, in one statement."""
        query = (
            select(AssignmentRow.submission_key, AssignmentRow.assigned)
            .where(AssignmentRow.call_id == call_id, AssignmentRow.juror_id == juror_id)
            .order_by(AssignmentRow.id)
        )
        with self.session() as s:
            return _assigned_now((key, assigned) for key, assigned in s.execute(query))

    def dossier_identities(self, call_id: str) -> list[tuple[str, str, str, str]]:
        """(key, team, organisation, contact) of a call's registered submissions, in the
        order they were first registered (key order at a tie): what a blind review hides,
        and the order its dossier numbers follow."""
        query = (
            select(
                SubmissionRow.key,
                SubmissionRow.team,
                SubmissionRow.organisation,
                SubmissionRow.document,
            )
            .where(SubmissionRow.call_id == call_id)
            .order_by(SubmissionRow.registered_at, SubmissionRow.key)
        )
        with self.session() as s:
            return [
                (key, team, organisation, str((document or {}).get("contact") or ""))
                for key, team, organisation, document in s.execute(query)
            ]

    # Rapporteurs and their syntheses
    def set_rapporteur(
        self, call_id: str, submission_key: str, juror_id: int, *, actor: str
    ) -> RapporteurRow:
        with self.session() as s:
            row = RapporteurRow(
                call_id=call_id, submission_key=submission_key, juror_id=juror_id, actor=actor
            )
            s.add(row)
            s.flush()
            return row

    def rapporteur_history(self, call_id: str) -> list[RapporteurRow]:
        with self.session() as s:
            query = (
                select(RapporteurRow)
                .where(RapporteurRow.call_id == call_id)
                .order_by(RapporteurRow.id)
            )
            return list(s.scalars(query))

    def rapporteurs(self, call_id: str) -> dict[str, int]:
        """Each submission's current rapporteur (juror id): its latest row."""
        return {row.submission_key: row.juror_id for row in self.rapporteur_history(call_id)}

    def add_synthesis(
        self,
        call_id: str,
        submission_key: str,
        juror_id: int,
        text: str,
        proposed_decision: str,
    ) -> SynthesisRow:
        with self.session() as s:
            row = SynthesisRow(
                call_id=call_id,
                submission_key=submission_key,
                juror_id=juror_id,
                text=text,
                proposed_decision=proposed_decision,
            )
            s.add(row)
            s.flush()
            return row

    def syntheses(self, call_id: str, submission_key: str | None = None) -> list[SynthesisRow]:
        """Saved syntheses, oldest first; a submission's current one is its latest."""
        query = (
            select(SynthesisRow).where(SynthesisRow.call_id == call_id).order_by(SynthesisRow.id)
        )
        if submission_key:
            query = query.where(SynthesisRow.submission_key == submission_key)
        with self.session() as s:
            return list(s.scalars(query))


def _assigned_now(changes: Iterable[tuple[Any, bool]]) -> set[Any]:
    """The keys whose latest change, in saving order, assigns them."""
    latest = dict(changes)  # later rows win
    return {key for key, assigned in latest.items() if assigned}
