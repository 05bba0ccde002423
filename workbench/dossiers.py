"""Dossier states: the lifecycle of a submission, and its audit log.

    draft -> submitted -> in_review -> accepted | rejected | dismissed
                  ^            |
                  +------------+   sent back for correction, with a message

A submission's `state` in its YAML is where it starts; every later change is a row of
the audit log in the store (who, when, from, to, why), and the latest row is its state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from workbench.errors import InputError
from workbench.vocabulary import STATES

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.workspace import Workspace

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted",),
    "submitted": ("in_review", "draft"),
    "in_review": ("accepted", "rejected", "dismissed", "submitted"),
    "accepted": (),
    "rejected": (),
    "dismissed": (),
}


class Transition(BaseModel):
    submission: str
    from_state: str
    to_state: str
    actor: str
    reason: str
    at: dt.datetime


def current_state(store: Store, submission_key: str, declared: str) -> str:
    """The latest state in the audit log, else the state the submission declares."""
    log = history(store, submission_key)
    return log[-1].to_state if log else declared


def history(store: Store, submission_key: str) -> list[Transition]:
    from sqlalchemy import select

    from workbench.store import TransitionRow

    query = (
        select(TransitionRow)
        .where(TransitionRow.submission_key == submission_key)
        .order_by(TransitionRow.id)
    )
    with store.session() as s:
        return [
            Transition(
                submission=row.submission_key,
                from_state=row.from_state,
                to_state=row.to_state,
                actor=row.actor,
                reason=row.reason,
                at=row.created_at,
            )
            for row in s.scalars(query)
        ]


def decide(
    workspace: Workspace, ref: str | Path, to_state: str, *, actor: str, reason: str = ""
) -> Transition:
    """Move a submission to `to_state`, if the lifecycle allows it, and log who and why."""
    from sqlalchemy import select

    from workbench.store import TransitionRow, open_store
    from workbench.submissions import load_submission

    if to_state not in TRANSITIONS:
        raise InputError(f"unknown state {to_state!r} (states: {', '.join(STATES)})")
    folder = workspace.submission_dir(ref)
    sub = load_submission(folder)
    call = workspace.call(sub.call)
    store = open_store(workspace.db_url)
    try:
        store.register(call, sub)
        with store.session() as s:
            # Read the state and append in one transaction: two officials deciding at once
            # cannot both move the dossier from the same state.
            last = s.scalars(
                select(TransitionRow)
                .where(TransitionRow.submission_key == sub.key)
                .order_by(TransitionRow.id.desc())
                .limit(1)
            ).first()
            from_state = last.to_state if last else sub.state
            if to_state not in TRANSITIONS[from_state]:
                allowed = ", ".join(TRANSITIONS[from_state]) or "none: the decision is final"
                raise InputError(
                    f"{sub.key}: cannot go from {from_state!r} to {to_state!r} (allowed: {allowed})"
                )
            if from_state == "in_review" and to_state == "submitted" and not reason.strip():
                raise InputError(f"{sub.key}: sending a dossier back needs a message (--reason)")
            row = TransitionRow(
                submission_key=sub.key,
                from_state=from_state,
                to_state=to_state,
                actor=actor,
                reason=reason,
            )
            s.add(row)
            s.flush()
            at = row.created_at
    finally:
        store.close()
    return Transition(
        submission=sub.key,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        reason=reason,
        at=at,
    )
