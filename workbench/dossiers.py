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


def state_of(logged: str | None, declared: str | None) -> str:
    """A dossier's state: the audit log's, else an older submission.yaml's, else `draft`."""
    return logged or declared or "draft"


def current_state(store: Store, submission_key: str, declared: str | None = None) -> str:
    """The latest state in the audit log, else the state the submission declares."""
    return state_of(store.current_state(submission_key), declared)


def history(store: Store, submission_key: str) -> list[Transition]:
    """A submission's audit log, oldest first (`Store.transitions` has a whole call's)."""
    return store.transitions(submission_key=submission_key)


def check_transition(key: str, from_state: str, to_state: str, reason: str) -> None:
    """Raise `InputError` unless the lifecycle allows going from `from_state` to `to_state`."""
    if to_state not in TRANSITIONS[from_state]:
        allowed = ", ".join(TRANSITIONS[from_state]) or "none: the decision is final"
        raise InputError(
            f"{key}: cannot go from {from_state!r} to {to_state!r} (allowed: {allowed})"
        )
    if from_state == "in_review" and to_state == "submitted" and not reason.strip():
        raise InputError(f"{key}: sending a dossier back needs a message (--reason)")


def decide(
    workspace: Workspace, ref: str | Path, to_state: str, *, actor: str, reason: str = ""
) -> Transition:
    """Move a submission to `to_state`, if the lifecycle allows it, and log who and why."""
    from workbench.store import open_store
    from workbench.submissions import load_submission

    if to_state not in TRANSITIONS:
        raise InputError(f"unknown state {to_state!r} (states: {', '.join(STATES)})")
    folder = workspace.submission_dir(ref)
    sub = load_submission(folder)
    call = workspace.call(sub.call)
    with open_store(workspace.db_url) as store:
        store.register(call, sub)
        # The state is read and the change appended in one transaction.
        return store.append_transition(
            sub.key,
            to_state,
            actor=actor,
            reason=reason,
            declared=sub.state or "draft",
            check=lambda from_state: check_transition(sub.key, from_state, to_state, reason),
        )
