"""The submission page: answers, metrics, charts, energy, history, the applicant's outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.dashboards.pages.common import (
    Context,
    language_links,
    macros,
    page_link,
    show_figure,
    show_html,
    show_widget,
)
from workbench.errors import NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable

    from workbench.jury import Juror, JurorView
    from workbench.store import Store


@dataclass(frozen=True)
class CellMark:
    """Where a cell's outputs start, among the applicant's items."""

    cell: int
    kind: str = "cell"


def latest_comparability(store: Store, call_id: str, run_id: str, reference: str | None) -> str:
    """Why a run's energy is not comparable with the call's other latest runs ('' if it is)."""
    from workbench.runner.metering import comparability

    # Each submission's latest run: the later rows of a submission win.
    latest = {run.submission_key: run for run in store.run_energies(call_id)}
    runs = list(latest.values())
    energies: list[dict[str, Any] | None] = [
        {
            "measured": r.method is not None,
            "method": r.method,
            "machine_fingerprint": r.machine_fingerprint,
        }
        for r in runs
    ]
    reasons = dict(zip([r.run_id for r in runs], comparability(energies, reference), strict=True))
    return reasons.get(run_id, "")


def paired_metrics(record: dict[str, Any]) -> list[str]:
    """The metric names recorded for both the AI and the baseline, sorted."""
    metrics: dict[str, float] = record.get("metrics") or {}
    return sorted({n.split(".", 1)[1] for n in metrics if n.startswith(("ai.", "baseline."))})


def submission_page(ctx: Context, juror: Juror, token: str, key: str) -> None:
    from workbench.charts import energy_figure, predictions_figure
    from workbench.dashboards.pages.scoring import scoring_form
    from workbench.dossiers import current_state
    from workbench.html.render import energy_lines, reproduction_label

    view, key = opened(ctx, juror, key)
    sub = ctx.store.submission(key)
    if sub is None or sub.call_id != ctx.call.id:
        raise NotFoundError(key)
    if current_state(ctx.store, key, sub.document.get("state")) == "draft":
        raise NotFoundError(key)  # a draft is the team's, not yet the jury's
    lang = ctx.lang
    page = macros("submission")
    runs = ctx.store.runs(submission_key=key)
    latest = runs[-1] if runs else None
    record: dict[str, Any] = latest.record if latest is not None else {}
    show_html(
        page.main(
            ctx.call,
            juror,
            view.dossier(sub, lang),
            record,
            paired_metrics(record),
            latest is not None,
            juror.has_conflict(key),
            page_link(token, lang=lang),
            language_links(token, view.ref(key)),
            lang,
        )
    )
    if latest is not None:
        figure = predictions_figure(record.get("records") or {}, lang)
        if figure is not None:
            show_figure(figure)
        energy = record.get("energy") or {}
        reason = ""
        if energy.get("measured"):
            reference = ctx.call.protocol.reference_machine
            reason = latest_comparability(ctx.store, ctx.call.id, latest.run_id, reference)
        flags = record.get("flags") or []
        lines = energy_lines(energy, lang) if energy.get("measured") else []
        show_html(page.energy(energy, lines, flags, reason, lang))
        energy_fig = energy_figure(energy, lang)
        if energy_fig is not None:
            show_figure(energy_fig)
    repro = ctx.store.latest_reproductions(ctx.call.id).get(key)
    messages = [view.mask(key, (run.record or {}).get("message") or "") for run in runs]
    show_html(page.history(runs, reproduction_label(repro, lang), lang, messages))
    scoring_form(ctx, juror, token, key)
    synthesis_form(ctx, juror, token, key)
    if latest is not None:
        show_outputs(ctx, record, lambda value: view.mask(key, value))


def opened(ctx: Context, juror: Juror, ref: str) -> tuple[JurorView, str]:
    """The juror's view and the dossier the address names: in a blind review by its
    number only; with `review.assigned_only`, one of their assigned dossiers only."""
    from workbench.jury import juror_view

    view = juror_view(ctx.store, ctx.call, juror, reviews=False)
    key = view.key_of(ref)
    if key is None or not view.may_open(key):
        raise NotFoundError(ref)
    return view, key


def show_outputs(
    ctx: Context, record: dict[str, Any], mask: Callable[[Any], Any] | None = None
) -> None:
    """The applicant's outputs, sanitised; their figures drawn between HTML chunks.

    `mask` withholds the team's names from every text, HTML and figure (a blind review).
    """
    from dataclasses import replace

    from workbench.dashboards.outputs import read_items

    page = macros("submission")
    show_html(page.outputs_heading(ctx.lang))
    path = Path(record.get("notebook") or "")
    if record.get("notebook") and not path.is_absolute():
        path = ctx.workspace.root / path
    items = read_items(path) if record.get("notebook") and path.is_file() else None
    if items is None:
        show_html(page.outputs_missing(ctx.lang))
        return
    chunk: list[Any] = []
    last_cell = None

    def flush() -> None:
        if chunk:
            show_html(page.applicant(list(chunk), ctx.lang))
            chunk.clear()

    for item in items:
        if mask is not None and item.kind in ("text", "html", "plotly"):
            item = replace(item, content=mask(item.content))
        if item.cell != last_cell:
            chunk.append(CellMark(item.cell))
            last_cell = item.cell
        if item.kind == "plotly":
            flush()
            show_figure(item.content)
        else:
            chunk.append(item)
    flush()


def synthesis_form(ctx: Context, juror: Juror, token: str, key: str) -> None:
    """The rapporteur's synthesis: nothing for other jurors, a notice until the reviews are
    in (`feedback.synthesis_gate`), then a text, a proposed decision and Save."""
    import ipywidgets as widgets

    from workbench.errors import WorkbenchError
    from workbench.feedback import DECISIONS, save_synthesis, synthesis_gate
    from workbench.i18n import state_label, t

    gate = synthesis_gate(ctx.store, ctx.call, juror, key)
    if not gate.rapporteur:
        return
    lang = ctx.lang
    html = macros("scoring")
    show_html(html.synthesis_heading(lang))
    if not gate.open:
        show_html(html.synthesis_waiting(gate.assigned, gate.missing, lang))
        return
    mine = [row for row in ctx.store.syntheses(ctx.call.id, key) if row.juror_id == juror.id]
    previous = mine[-1] if mine else None
    text = widgets.Textarea(
        value=previous.text if previous else "",
        placeholder=t("synthesis_text", lang),
        layout={"width": "720px", "height": "120px"},
    )
    text.add_class("wb-synthesis-text")
    decision = widgets.Dropdown(
        options=[(state_label(state, lang), state) for state in DECISIONS],
        value=previous.proposed_decision if previous else None,
        description=t("proposed_decision", lang),
        style={"description_width": "initial"},
    )
    decision.add_class("wb-synthesis-decision")
    save = widgets.Button(description=t("save", lang), button_style="primary", icon="")
    save.add_class("wb-synthesis-save")
    status = widgets.HTML(str(html.synthesis_saved(previous, lang)) if previous else "")
    status.add_class("wb-synthesis-status")

    def on_save(_button: Any) -> None:
        try:
            row = save_synthesis(ctx.store, ctx.call, token, key, text.value, decision.value or "")
        except WorkbenchError as exc:
            status.value = str(html.failed(str(exc), lang))
            return
        status.value = str(html.synthesis_saved(row, lang))

    save.on_click(on_save)
    show_widget(widgets.VBox([text, decision, widgets.HBox([save, status])]))
