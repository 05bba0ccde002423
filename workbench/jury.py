"""The jury of a call: jurors, their personal tokens, conflicts of interest, and scores.

A juror is created with a random token that only they receive, inside their personal
link; the store keeps the token's sha256 and nothing else, so a stolen database gives
no access. Every request proves who it is by sending the token, which the dashboard's
kernel hashes and looks up in the store: the identity behind a score never comes from
anything the browser could choose.

Scores are appended, never updated: each save is a new row (juror, time, values,
private note, message to the team, weighted total), a juror's latest row is their
current score, and every earlier row stays as the history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError, InvalidError, NotFoundError, Problem

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.store import ScoreRow, Store
    from workbench.workspace import Workspace

DEFAULT_PORT = 8866
TOKEN_BYTES = 32


class AccessDenied(InputError):
    """No token, or a token that belongs to no juror of this call."""


class ConflictOfInterest(InputError):
    """The juror declared a conflict of interest with the submission."""


@dataclass(frozen=True)
class Juror:
    id: int
    call: str
    name: str
    conflicts: tuple[str, ...]

    def has_conflict(self, submission_key: str) -> bool:
        return submission_key in self.conflicts


def new_token() -> str:
    """A random URL-safe token of 256 bits."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def juror_link(token: str, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> str:
    """The personal link of a juror: the call page of `workbench serve`, with their token."""
    return f"http://{host}:{port}/?token={token}"


def _juror(row: Any) -> Juror:
    return Juror(row.id, row.call_id, row.name, tuple(row.conflicts or ()))


def _submission_key(call_id: str, ref: str) -> str:
    """`ID` or `CALL/ID` as the submission key `CALL/ID`."""
    if "/" in ref:
        ref_call, _, _ = ref.partition("/")
        if ref_call != call_id:
            raise InputError(f"{ref}: not a submission of call {call_id!r}")
        return ref
    return f"{call_id}/{ref}"


def add_juror(
    workspace: Workspace, call_id: str, name: str, conflicts: Iterable[str] = ()
) -> tuple[Juror, str]:
    """Create a juror of a call; returns the juror and their token (shown once, never stored).

    Each conflict is a submission id (or `CALL/ID`) of the call, in the workspace or the store.
    """
    from workbench.store import open_store

    name = name.strip()
    if not name:
        raise InputError("a juror needs a name")
    call = workspace.call(call_id)
    keys = sorted({_submission_key(call.id, ref) for ref in conflicts})
    known_folders = {f"{call.id}/{p.name}" for p in workspace.submission_dirs(call.id)}
    token = new_token()
    with open_store(workspace.db_url) as store:
        known = known_folders | store.submission_keys(call.id)
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise NotFoundError(f"unknown submission(s) of {call.id}: {', '.join(unknown)}")
        if any(j.name == name for j in store.jurors(call.id)):
            raise InputError(f"{call.id} already has a juror named {name!r}")
        row = store.add_juror(call, name, hash_token(token), keys)
    return _juror(row), token


def authenticate(store: Store, call_id: str, token: str | None) -> Juror:
    """The juror whose token this is, for this call; `AccessDenied` otherwise."""
    if not token:
        raise AccessDenied("no access token")
    row = store.juror_by_token(hash_token(token))
    if row is None or row.call_id != call_id:
        raise AccessDenied("unknown access token")
    return _juror(row)


def check_values(call: Call, values: Mapping[str, Any]) -> dict[str, float]:
    """One number per rubric criterion, on its scale; every problem is reported."""
    problems = []
    clean: dict[str, float] = {}
    for criterion in call.rubric:
        value = values.get(criterion.id)
        field = f"values.{criterion.id}"
        if value is None or isinstance(value, bool):
            problems.append(Problem("score", field, "not scored"))
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(Problem("score", field, f"expected a number, got {value!r}"))
            continue
        scale = criterion.scale
        if not scale.contains(number):
            problems.append(
                Problem(
                    "score",
                    field,
                    f"{number:g} is not on the scale {scale.min:g}..{scale.max:g} "
                    f"(step {scale.step:g})",
                )
            )
            continue
        clean[criterion.id] = number
    for extra in sorted(set(values) - {c.id for c in call.rubric}):
        problems.append(Problem("score", f"values.{extra}", "not a criterion of the rubric"))
    if problems:
        raise InvalidError(problems)
    return clean


def weighted_total(call: Call, values: Mapping[str, float]) -> float:
    """The rubric's weighted total, on 0..100.

    Each value is first placed on its criterion's scale (min -> 0, max -> 1), so criteria
    with different scales weigh exactly what the call says; the weights sum to 1.
    """
    total = 0.0
    for criterion in call.rubric:
        scale = criterion.scale
        total += criterion.weight * (values[criterion.id] - scale.min) / (scale.max - scale.min)
    return round(100 * total, 6)


def save_score(
    store: Store,
    call: Call,
    token: str | None,
    submission_key: str,
    values: Mapping[str, Any],
    comment: str = "",
    message: str = "",
) -> ScoreRow:
    """Append a score for the juror who owns `token`; checked, then stored in one insert.

    `comment` is the private note for the jury (the committee reads it, the team never
    does); `message` is the optional word to the team, which their feedback letter carries.
    """
    juror = authenticate(store, call.id, token)
    if juror.has_conflict(submission_key):
        raise ConflictOfInterest(
            f"{juror.name} declared a conflict of interest with {submission_key}"
        )
    from workbench.dossiers import current_state

    sub = store.submission(submission_key)
    if sub is None or sub.call_id != call.id:
        raise NotFoundError(f"no submission {submission_key!r} in call {call.id}")
    if current_state(store, submission_key, sub.document.get("state")) == "draft":
        raise NotFoundError(f"{submission_key} is a draft: it has not been handed in")
    clean = check_values(call, values)
    return store.add_score(
        juror.id,
        submission_key,
        clean,
        comment.strip(),
        weighted_total(call, clean),
        message=message.strip(),
    )


def current_scores(
    store: Store, call_id: str, saves: list[ScoreRow] | None = None
) -> dict[str, dict[int, ScoreRow]]:
    """Each submission's current scores: its jurors' latest rows, by juror id (from `saves`,
    the call's score rows in saving order, when the caller has read them already)."""
    current: dict[str, dict[int, ScoreRow]] = {}
    rows = store.scores(call_id=call_id) if saves is None else saves
    for row in rows:  # in saving order: later rows win
        current.setdefault(row.submission_key, {})[row.juror_id] = row
    return current


def jury_summary(store: Store, call_id: str) -> dict[str, dict[str, Any]]:
    """Per submission: how many jurors scored it, and the mean of their weighted totals."""
    summary = {}
    for key, by_juror in current_scores(store, call_id).items():
        totals = [row.weighted_total for row in by_juror.values()]
        summary[key] = {"jurors": len(totals), "score": sum(totals) / len(totals)}
    return summary


def history(store: Store, submission_key: str, juror_id: int | None = None) -> list[ScoreRow]:
    """Every score saved for a submission (by one juror, or all), oldest first."""
    return store.scores(submission_key=submission_key, juror_id=juror_id)


@dataclass(frozen=True)
class Progress:
    juror: Juror
    created_at: dt.datetime
    scored: int
    to_score: int
    saves: int
    last_saved: dt.datetime | None


def progress(workspace: Workspace, call_id: str) -> list[Progress]:
    """Each juror of a call: how many submissions they scored out of those they may score."""
    from workbench.store import open_store

    call = workspace.call(call_id)  # an unknown call is an error, not an empty list
    with open_store(workspace.db_url) as store:
        return store_progress(store, call.id)


def store_progress(store: Store, call_id: str) -> list[Progress]:
    """`progress` from an open store, in four queries whatever the size of the call.

    Drafts are not the jury's: they count neither as scored nor as to score.
    """
    submissions = {k for k, state in store.dossier_states(call_id).items() if state != "draft"}
    by_juror: dict[int, list[ScoreRow]] = {}
    for score in store.scores(call_id=call_id):  # in saving order
        by_juror.setdefault(score.juror_id, []).append(score)
    result = []
    for row in store.jurors(call_id):
        juror = _juror(row)
        mine = by_juror.get(juror.id, [])
        scorable = submissions - set(juror.conflicts)
        result.append(
            Progress(
                juror=juror,
                created_at=row.created_at,
                scored=len({s.submission_key for s in mine} & scorable),
                to_score=len(scorable),
                saves=len(mine),
                last_saved=mine[-1].created_at if mine else None,
            )
        )
    return result
