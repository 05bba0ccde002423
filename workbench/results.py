"""Results of a call: one typed `ResultRow` per submission, built once where rows leave the store.

The CLI's `results`, the dashboards and the committee's report all read these rows; none of
them flattens the store's records again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from workbench.runner.metering import Energy
from workbench.runner.records import RunScore

if TYPE_CHECKING:
    from workbench.repeats import EnergySummary
    from workbench.store import RunRow, Store

NOT_RUN = "not_run"  # the status of a submission that has no run yet


class ResultRow(BaseModel):
    """A submission of a call, its dossier state, its latest run and the jury's mean score."""

    model_config = ConfigDict(frozen=True)

    submission: str  # the key, "call/id"
    team: str
    organisation: str
    title: str
    template: str
    state: str
    run_id: str | None = None
    status: str = NOT_RUN
    started_at: dt.datetime | None = None
    duration_s: float | None = None
    message: str = ""
    flags: list[str] = []
    metrics: dict[str, float] = {}
    score: RunScore | None = None
    energy: Energy | None = None
    # Why this run's energy cannot be compared with the others' ('' when it can).
    comparable_reason: str = ""
    reproduction: dict[str, Any] | None = None
    jurors: int = 0
    jury_score: float | None = None
    # Repeated runs of the same input (the call's `protocol.repeats`): `energy` holds their
    # medians, and each interval is a 95 % interval across them (None with fewer than two).
    repeats: int = 1
    total_kwh_ci95: tuple[float, float] | None = None
    wh_per_1000_predictions_ci95: tuple[float, float] | None = None
    ai_minus_baseline_kwh: float | None = None
    ai_minus_baseline_kwh_ci95: tuple[float, float] | None = None
    phases_ci95: dict[str, tuple[float, float]] = {}

    @property
    def submission_id(self) -> str:
        return self.submission.split("/", 1)[1]

    @property
    def gain(self) -> float | None:
        return self.score.gain_vs_baseline if self.score is not None else None

    @property
    def measured(self) -> bool:
        return self.energy is not None and self.energy.measured

    @property
    def comparable(self) -> bool:
        return self.measured and self.comparable_reason == ""

    def measured_energy(self) -> Energy | None:
        """The energy record when it was measured, else None."""
        return self.energy if self.measured else None

    @property
    def verdict(self) -> str | None:
        return self.reproduction["verdict"] if self.reproduction else None


def call_results(
    store: Store, call_id: str, reference_machine: str | None = None, *, drafts: bool = False
) -> list[ResultRow]:
    """One row per registered submission of the call, from its latest run.

    When that run succeeded, its energy figures are the medians of every succeeded run of
    the same input, with their 95 % intervals (`workbench.repeats`); `repeats` says how many.

    Drafts (dossiers not handed in) are left out unless `drafts`: they never reach jurors,
    rankings or the committee. `comparable_reason` says why a run's energy cannot be
    compared with the others' (another machine or another measuring method); it is empty
    when it can.
    """
    from workbench.dossiers import state_of
    from workbench.runner.metering import comparability

    states = store.current_states(call_id)
    latest = [
        (sub, runs[-1] if runs else None, runs)
        for sub, runs in store.latest_input_runs(call_id)
        if drafts or state_of(states.get(sub.key), sub.document.get("state")) != "draft"
    ]
    reproductions = store.latest_reproductions(call_id)
    jury = store.jury_means(call_id)
    energies = [run.record.get("energy") if run is not None else None for _sub, run, _ in latest]
    reasons = comparability(energies, reference_machine)
    rows = []
    for (sub, run, runs), reason in zip(latest, reasons, strict=True):
        record = run.record if run is not None else {}
        figures = _repeated_figures(run, runs)
        energy = figures.energy
        if energy is not None:
            energy = energy.model_copy(update={"comparable": reason == ""})
        jurors, jury_score = jury.get(sub.key, (0, None))
        rows.append(
            ResultRow(
                submission=sub.key,
                team=sub.team,
                organisation=sub.organisation,
                title=sub.title,
                template=sub.template,
                state=state_of(states.get(sub.key), sub.document.get("state")),
                run_id=run.run_id if run else None,
                status=run.status if run else NOT_RUN,
                started_at=run.started_at if run else None,
                duration_s=run.duration_s if run else None,
                message=record.get("message", ""),
                flags=record.get("flags", []),
                metrics={m.name: m.value for m in run.metrics} if run else {},
                score=RunScore.model_validate(record["score"]) if record.get("score") else None,
                energy=energy,
                comparable_reason=reason if energy is not None else "",
                reproduction=reproductions.get(sub.key),
                jurors=jurors,
                jury_score=jury_score,
                repeats=figures.runs,
                total_kwh_ci95=figures.total_kwh_ci95,
                wh_per_1000_predictions_ci95=figures.wh_per_1000_predictions_ci95,
                ai_minus_baseline_kwh=figures.ai_minus_baseline_kwh,
                ai_minus_baseline_kwh_ci95=figures.ai_minus_baseline_kwh_ci95,
                phases_ci95=figures.phases_ci95,
            )
        )
    return rows


def _repeated_figures(run: RunRow | None, runs: list[RunRow]) -> EnergySummary:
    """The row's energy figures: the medians and intervals of the latest input's succeeded
    runs when the latest run succeeded, else the latest run's own energy, as recorded."""
    from workbench.repeats import EnergySummary, energy_summary

    if run is None:
        return EnergySummary(runs=0, energy=None)
    latest = Energy.model_validate(run.record["energy"]) if run.record.get("energy") else None
    if run.status != "succeeded" or latest is None:
        return EnergySummary(runs=1, energy=latest)
    succeeded = [r for r in runs if r.status == "succeeded"]
    energies = [
        Energy.model_validate(r.record["energy"]) for r in succeeded if r.record.get("energy")
    ]
    summary = energy_summary(energies, latest)
    return dataclasses.replace(summary, runs=len(succeeded))
