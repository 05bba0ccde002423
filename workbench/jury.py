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
    from workbench.assignments import LogEntry as AssignmentLogEntry
    from workbench.calls import Call
    from workbench.store import ScoreRow, Store
    from workbench.workspace import Workspace

DEFAULT_PORT = 8866
TOKEN_BYTES = 32


class AccessDenied(InputError):
    """No token, or a token that belongs to no juror of this call."""


class ConflictOfInterest(InputError):
    """The juror declared a conflict of interest with the submission."""


class NotAssigned(InputError):
    """The call's jurors score only their assigned dossiers (`review.assigned_only`)."""


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
    if call.review.assigned_only and submission_key not in store.juror_assignments(
        call.id, juror.id
    ):
        raise NotAssigned(f"{juror.name} is not assigned to {submission_key}")
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
    assigned: int = 0  # handed-in dossiers assigned to the juror
    done: int = 0  # of those, the ones they scored


def progress(workspace: Workspace, call_id: str) -> list[Progress]:
    """Each juror of a call: how many submissions they scored out of those they may score."""
    from workbench.store import open_store

    call = workspace.call(call_id)  # an unknown call is an error, not an empty list
    with open_store(workspace.db_url) as store:
        return store_progress(store, call.id)


def store_progress(store: Store, call_id: str) -> list[Progress]:
    """`progress` from an open store, in five queries whatever the size of the call.

    Drafts are not the jury's: they count neither as scored nor as to score.
    """
    submissions = {k for k, state in store.dossier_states(call_id).items() if state != "draft"}
    assigned: dict[int, set[str]] = {}
    for juror_id, key in store.current_assignments(call_id):
        if key in submissions:
            assigned.setdefault(juror_id, set()).add(key)
    by_juror: dict[int, list[ScoreRow]] = {}
    for score in store.scores(call_id=call_id):  # in saving order
        by_juror.setdefault(score.juror_id, []).append(score)
    result = []
    for row in store.jurors(call_id):
        juror = _juror(row)
        mine = by_juror.get(juror.id, [])
        scorable = submissions - set(juror.conflicts)
        mine_assigned = assigned.get(juror.id, set())
        result.append(
            Progress(
                juror=juror,
                created_at=row.created_at,
                scored=len({s.submission_key for s in mine} & scorable),
                to_score=len(scorable),
                saves=len(mine),
                last_saved=mine[-1].created_at if mine else None,
                assigned=len(mine_assigned),
                done=len({s.submission_key for s in mine} & mine_assigned),
            )
        )
    return result


def assignment_log(store: Store, call_id: str) -> list[AssignmentLogEntry]:
    """Every change of the call's assignments and rapporteurs, oldest first, with who
    made it and when (Paris time): the jury's part of the audit log."""
    from workbench.assignments import assignment_log as log

    return log(store, call_id)


# ---------------------------------------------------------------- what a juror's pages show

WITHHELD = "[…]"  # in place of a team's, organisation's or contact's name in a blind review


@dataclass(frozen=True)
class ShownDossier:
    """A dossier as a juror's submission page shows it: in a blind review, its number
    instead of its title, no team, organisation or contact, and answers masked."""

    title: str
    team: str
    organisation: str
    template: str
    answers: dict[str, Any]
    blind: bool


@dataclass(frozen=True)
class JurorView:
    """One juror's view of a call: their assignments, each dossier's reviews, and in a
    blind review (`review.blind`) the dossier numbers and what to hide.

    Blind rule: the team, the organisation and the contact of `submission.yaml` are never
    shown; the submission's id (often the team's name) and its title become "Dossier N",
    N its rank in the order the dossiers were first registered (stable as new ones
    arrive), and the address carries `CALL/N`. Wherever the dossier's own text is shown
    (questionnaire answers, run messages, the applicant's outputs and figures), any
    occurrence of the team's, organisation's or contact's name is replaced by `[…]`.
    """

    call_id: str
    blind: bool
    assigned_only: bool
    assigned: frozenset[str]
    reviews: Mapping[str, tuple[int, int]]  # key -> (assigned jurors who scored, assigned)
    numbers: Mapping[str, int]  # key -> dossier number (blind review only)
    hidden: Mapping[str, tuple[str, ...]]  # key -> the names to withhold (blind only)
    scored: frozenset[str]  # the dossiers this juror has scored

    def may_open(self, key: str) -> bool:
        return not self.assigned_only or key in self.assigned

    def ref(self, key: str) -> str:
        """How the juror's pages name a dossier (links, rows)."""
        return f"{self.call_id}/{self.numbers[key]}" if self.blind else key

    def key_of(self, ref: str) -> str | None:
        """The dossier a page's address names; None when it names none this juror sees."""
        if not self.blind:
            return ref
        by_number = {f"{self.call_id}/{n}": key for key, n in self.numbers.items()}
        return by_number.get(ref)

    def label(self, key: str, lang: str) -> str:
        from workbench.i18n import t

        return t("dossier_n", lang, n=self.numbers[key])

    def progress(self, keys: Iterable[str]) -> tuple[int, int]:
        """(scored, assigned) among these (handed-in) dossiers assigned to the juror."""
        mine = self.assigned & set(keys)
        return len(mine & self.scored), len(mine)

    def mask(self, key: str, value: Any) -> Any:
        """`value` (text, or a figure's lists and dicts) with the dossier's names withheld."""
        if not self.blind:
            return value
        return _masked(value, _name_pattern(self.hidden.get(key, ())))

    def rows(self, rows: list[Any], lang: str) -> list[tuple[str, Any]]:
        """(key, row shown) for the call page: the juror's assigned dossiers first (each
        group in the given order), the others only if they may open them; blinded."""
        visible = [r for r in rows if self.may_open(r.submission)]
        visible.sort(key=lambda r: r.submission not in self.assigned)
        if not self.blind:
            return [(r.submission, r) for r in visible]
        shown = []
        for r in visible:
            label = self.label(r.submission, lang)
            blinded = r.model_copy(
                update={
                    "submission": self.ref(r.submission),
                    "team": label,
                    "organisation": WITHHELD,
                    "title": label,
                    "message": self.mask(r.submission, r.message),
                }
            )
            shown.append((r.submission, blinded))
        return shown

    def dossier(self, sub: Any, lang: str) -> ShownDossier:
        answers = dict(sub.document.get("answers") or {})
        if not self.blind:
            return ShownDossier(sub.title, sub.team, sub.organisation, sub.template, answers, False)
        label = self.label(sub.key, lang)
        masked = {q: self.mask(sub.key, a) for q, a in answers.items()}
        return ShownDossier(label, WITHHELD, WITHHELD, sub.template, masked, True)


def juror_view(store: Store, call: Call, juror: Juror, *, reviews: bool = True) -> JurorView:
    """The juror's view of the call, in at most three queries (`reviews` reads the scores)."""
    current = store.current_assignments(call.id)
    assigned = frozenset(key for j, key in current if j == juror.id)
    counts: dict[str, tuple[int, int]] = {}
    scored: set[str] = set()
    if reviews:
        by_key = current_scores(store, call.id)
        scored = {key for key, by in by_key.items() if juror.id in by}
        for j, key in current:
            done, total = counts.get(key, (0, 0))
            counts[key] = (done + (j in by_key.get(key, {})), total + 1)
    numbers: dict[str, int] = {}
    hidden: dict[str, tuple[str, ...]] = {}
    if call.review.blind:
        for n, (key, *names) in enumerate(store.dossier_identities(call.id), start=1):
            numbers[key] = n
            hidden[key] = tuple(name for name in names if name)
    return JurorView(
        call.id,
        call.review.blind,
        call.review.assigned_only,
        assigned,
        counts,
        numbers,
        hidden,
        frozenset(scored),
    )


def _name_pattern(names: Iterable[str]) -> Any:
    import html
    import re

    # The names as written and as HTML writes them (an applicant's sanitised outputs).
    variants = {v for name in names if len(name.strip()) >= 2 for v in (name, html.escape(name))}
    if not variants:
        return None
    alternatives = sorted(variants, key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in alternatives), re.IGNORECASE)


def _masked(value: Any, pattern: Any) -> Any:
    if pattern is None:
        return value
    if isinstance(value, str):
        return pattern.sub(WITHHELD, value)
    if isinstance(value, list):
        return [_masked(v, pattern) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, pattern) for k, v in value.items()}
    return value
