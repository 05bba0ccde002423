"""What goes back from the jury: the rapporteur's synthesis, and the teams' feedback letters.

The synthesis. The funder names a rapporteur per submission (`Store.set_rapporteur`); only
the current rapporteur may write its synthesis, a text and a proposed decision (one of the
final decisions `workbench decide` can take), and only once the reviews are in: every
juror assigned to the submission has saved a score or, when nobody is assigned to it, at
least one juror besides the rapporteur has. Each save is a new row; the latest is current.

The letters. One self-contained HTML page per handed-in dossier, for its team: the measured
results of its latest run, the decision once taken, and the jurors' messages to the team
(each juror's latest save). Never a private note. Jurors are named beside their message
only when the call's review is not blind (an open review: the team may know its jury);
in a blind review they are "Juror 1", "Juror 2", numbered per letter.

The committee's tables (`jury_work`): current assignments, syntheses and their history,
and every score save with its private note and its message, for the report and its xlsx.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.dossiers import TRANSITIONS
from workbench.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.jury import Juror
    from workbench.results import ResultRow
    from workbench.store import Store
    from workbench.tables import SynthesisRow
    from workbench.workspace import Workspace

# The decisions a synthesis may propose: the states a dossier under review ends in.
DECISIONS = tuple(state for state in TRANSITIONS["in_review"] if not TRANSITIONS[state])


class SynthesisRefused(InputError):
    """Someone else than the rapporteur, or reviews still missing."""


@dataclass(frozen=True)
class SynthesisGate:
    """Whether a juror may write a submission's synthesis now, and what is still missing."""

    rapporteur: bool
    assigned: int  # jurors assigned to the submission (0: nobody is)
    missing: int  # reviews still awaited before the form opens

    @property
    def open(self) -> bool:
        return self.rapporteur and self.missing == 0

    def waiting(self) -> str:
        """What is awaited, in English (the page words it in its own language)."""
        if self.assigned:
            return f"{self.missing} of {self.assigned} assigned review(s) still missing"
        return "no review by another juror yet"


def synthesis_gate(store: Store, call: Call, juror: Juror, key: str) -> SynthesisGate:
    """The rule above, in three queries (rapporteurs, assignments, the submission's scores)."""
    rapporteur = store.rapporteurs(call.id).get(key) == juror.id
    assigned = {j for j, k in store.current_assignments(call.id) if k == key}
    reviewed = {row.juror_id for row in store.scores(submission_key=key)}
    # With nobody assigned, one review by another juror is enough to open the form.
    others_in = bool(reviewed - {juror.id})
    missing = len(assigned - reviewed) if assigned else int(not others_in)
    return SynthesisGate(rapporteur, len(assigned), missing)


def save_synthesis(
    store: Store, call: Call, token: str | None, key: str, text: str, proposed_decision: str
) -> SynthesisRow:
    """Append the synthesis of the rapporteur who owns `token`; every refusal stores nothing."""
    from workbench.dossiers import current_state
    from workbench.jury import authenticate

    juror = authenticate(store, call.id, token)
    sub = store.submission(key)
    if sub is None or sub.call_id != call.id:
        raise NotFoundError(f"no submission {key!r} in call {call.id}")
    if current_state(store, key, sub.document.get("state")) == "draft":
        raise NotFoundError(f"{key} is a draft: it has not been handed in")
    text = text.strip()
    if not text:
        raise InputError(f"{key}: the synthesis is empty")
    if proposed_decision not in DECISIONS:
        raise InputError(
            f"{key}: proposed decision {proposed_decision!r} is not one of {', '.join(DECISIONS)}"
        )
    gate = synthesis_gate(store, call, juror, key)
    if not gate.rapporteur:
        raise SynthesisRefused(f"{juror.name} is not the rapporteur of {key}")
    if not gate.open:
        raise SynthesisRefused(f"{key}: the synthesis waits for the reviews ({gate.waiting()})")
    return store.add_synthesis(call.id, key, juror.id, text, proposed_decision)


# ---------------------------------------------------------------- feedback letters


@dataclass(frozen=True)
class Message:
    author: str  # the juror's name, or "Juror n" in a blind review
    text: str
    saved_at: dt.datetime


@dataclass(frozen=True)
class Letter:
    result: ResultRow
    state: str  # the dossier's current state
    decided_at: dt.datetime | None  # when the decision was taken; None: not yet
    messages: list[Message] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.decided_at is not None


def letters(store: Store, call: Call, lang: str = "fr") -> list[Letter]:
    """One letter per handed-in dossier, in a fixed number of queries."""
    from workbench.i18n import t
    from workbench.results import call_results

    results = call_results(store, call.id, call.protocol.reference_machine)  # drafts left out
    names = {row.id: row.name for row in store.jurors(call.id)}
    current: dict[str, dict[int, tuple[str, dt.datetime]]] = {}
    for score in store.scores(call_id=call.id):  # in saving order: later saves win
        current.setdefault(score.submission_key, {})[score.juror_id] = (
            score.message,
            score.created_at,
        )
    decided: dict[str, dt.datetime] = {}
    for transition in store.transitions(call_id=call.id):  # the audit log, in order
        if transition.to_state in DECISIONS:
            decided[transition.submission] = transition.at
    out = []
    for row in results:
        messages: list[Message] = []
        by_juror = current.get(row.submission, {})
        for juror_id in sorted(by_juror):
            text, saved_at = by_juror[juror_id]
            if not text.strip():
                continue
            number = len(messages) + 1  # numbered among the messages the letter shows
            author = t("a_juror", lang, n=number) if call.review.blind else names[juror_id]
            messages.append(Message(author, text, saved_at))
        at = decided.get(row.submission) if row.state in DECISIONS else None
        out.append(Letter(row, row.state, at, messages))
    return out


def result_lines(row: ResultRow, lang: str) -> list[tuple[str, str]]:
    """(label, text) of a letter's measured results: AI against the baseline, energy, verdict."""
    from workbench.html.render import fmt, fmt_gain, reproduction_label
    from workbench.i18n import reason_label, status_label, t
    from workbench.units import CARBON, ENERGY, ENERGY_PER_1000, format_interval, unit_for

    def decimal(text: str) -> str:
        return text.replace(".", ",") if lang == "fr" else text

    lines = [(t("status", lang), status_label(row.status, lang))]
    if row.score is not None:
        lines += [
            (t("metric", lang), row.score.metric),
            (t("ai", lang), decimal(fmt(row.score.ai))),
            (t("baseline", lang), decimal(fmt(row.score.baseline))),
            (t("gain_vs_baseline", lang), decimal(fmt_gain(row.score.gain_vs_baseline))),
        ]
    energy = row.measured_energy()
    if energy is not None:
        unit = unit_for(energy.total_kwh, ENERGY)
        reason = reason_label(energy.unknown.get("total_kwh"), lang)
        text = unit.format(energy.total_kwh, lang, reason)
        if row.total_kwh_ci95 is not None:
            text += f" {format_interval(row.total_kwh_ci95, unit, lang)}"
        elif row.repeats == 1:
            text += f" ({t('one_run', lang)})"
        if energy.method_uncertainty is not None:
            percent = f"{energy.method_uncertainty * 100:g}"
            text += f"; {t('energy_uncertainty', lang, percent=percent)}"
        lines.append((t("energy_kwh", lang), text))
        lines.append((t("method", lang), energy.method or t("unknown", lang)))
        for key, kind in (("wh_per_1000_predictions", ENERGY_PER_1000), ("co2e_g", CARBON)):
            value = getattr(energy, key)
            reason = reason_label(energy.unknown.get(key), lang)
            lines.append((t(key, lang), unit_for(value, kind).format(value, lang, reason)))
    elif row.energy is not None:
        why = t("not_measured", lang) + (f" ({row.energy.reason})" if row.energy.reason else "")
        lines.append((t("energy_kwh", lang), why))
    lines.append((t("reproduction", lang), reproduction_label(row.reproduction, lang)[0]))
    return lines


def render_letter(letter: Letter, call: Call, lang: str) -> str:
    from workbench.html.render import render

    return render(
        "letter/letter.html.j2",
        letter=letter,
        row=letter.result,
        call=call,
        lines=result_lines(letter.result, lang),
        lang=lang,
    )


def write_letters(workspace: Workspace, call_id: str, out: Path, lang: str = "fr") -> list[Path]:
    """Write `<out>/<submission id>.html` for every handed-in dossier of the call."""
    from workbench.store import open_store
    from workbench.vocabulary import LANGUAGES

    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r} ({' or '.join(LANGUAGES)})")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: not a folder")
    call = workspace.call(call_id)
    with open_store(workspace.db_url) as store:
        found = letters(store, call, lang)
    pages = [(letter, render_letter(letter, call, lang)) for letter in found]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for letter, markup in pages:
        path = out / f"{letter.result.submission_id}.html"
        path.write_text(markup, encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------- the committee's tables


@dataclass
class JuryWork:
    """The jury's work as the committee's report tabulates it (rows of named columns)."""

    assignments: list[dict[str, Any]] = field(default_factory=list)  # current, per submission
    syntheses: list[dict[str, Any]] = field(default_factory=list)  # current, per submission
    synthesis_history: list[dict[str, Any]] = field(default_factory=list)  # every save
    messages: list[dict[str, Any]] = field(default_factory=list)  # every score save
    proposed: dict[str, str] = field(default_factory=dict)  # submission -> current decision


def jury_work(store: Store, call_id: str, saves: list[Any]) -> JuryWork:
    """The tables of assignments, syntheses and messages, in four queries; `saves` are the
    call's score rows in saving order. Private notes are in `messages`: these tables are
    the committee's, never a team's."""
    work = JuryWork()
    names = {row.id: row.name for row in store.jurors(call_id)}
    rapporteurs = store.rapporteurs(call_id)
    assigned: dict[str, list[str]] = {}
    for juror_id, key in sorted(store.current_assignments(call_id)):
        assigned.setdefault(key, []).append(names.get(juror_id, str(juror_id)))
    for key in sorted(assigned.keys() | rapporteurs.keys()):
        rapporteur = rapporteurs.get(key)
        work.assignments.append(
            {
                "submission": key,
                "assigned_jurors": ", ".join(sorted(assigned.get(key, []))),
                "rapporteur": names.get(rapporteur, "") if rapporteur is not None else "",
            }
        )
    current: dict[str, dict[str, Any]] = {}
    for synthesis in store.syntheses(call_id):  # oldest first: the latest per key wins
        row = {
            "submission": synthesis.submission_key,
            "rapporteur": names.get(synthesis.juror_id, str(synthesis.juror_id)),
            "at": synthesis.created_at.replace(tzinfo=None),
            "proposed_decision": synthesis.proposed_decision,
            "text": synthesis.text,
        }
        work.synthesis_history.append(row)
        current[synthesis.submission_key] = row
    work.syntheses = [current[key] for key in sorted(current)]
    work.proposed = {key: row["proposed_decision"] for key, row in current.items()}
    for score in saves:
        work.messages.append(
            {
                "submission": score.submission_key,
                "juror": names.get(score.juror_id, str(score.juror_id)),
                "at": score.created_at.replace(tzinfo=None),
                "weighted_total": score.weighted_total,
                "team_message": score.message,
                "private_note": score.comment,
            }
        )
    return work
