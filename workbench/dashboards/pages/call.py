"""The call page: the Pareto chart and the ranking, sorted and filtered in the browser; the
juror's assigned dossiers first, marked, and each dossier's reviews done out of assigned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.dashboards.pages.common import (
    Context,
    language_links,
    macros,
    page_link,
    show_figure,
    show_html,
)

if TYPE_CHECKING:
    from workbench.jury import Juror
    from workbench.results import ResultRow


def ranked(results: list[ResultRow]) -> list[ResultRow]:
    """The rows by gain, highest first; rows without a gain last."""
    return sorted(results, key=lambda r: (r.gain is None, -(r.gain or 0.0)))


def call_page(ctx: Context, juror: Juror, token: str) -> None:
    from workbench.charts import energy_overlaps, pareto_figure
    from workbench.html.render import TableUnits
    from workbench.jury import juror_view
    from workbench.results import call_results

    results = ranked(call_results(ctx.store, ctx.call.id, ctx.call.protocol.reference_machine))
    view = juror_view(ctx.store, ctx.call, juror)
    pairs = view.rows(results, ctx.lang)  # assigned first; blinded in a blind review
    rows = [row for _, row in pairs]
    page = macros("call")
    show_html(page.top(ctx.call, juror, language_links(token), ctx.lang))
    done, assigned = view.progress(r.submission for r in results)
    show_html(page.my_work(done, assigned, view.blind, ctx.lang))
    show_figure(pareto_figure(rows, ctx.lang))
    conflicts = {row.submission for key, row in pairs if juror.has_conflict(key)}
    links = {r.submission: page_link(token, r.submission, ctx.lang) for r in rows}
    overlaps = energy_overlaps(rows)
    marks = Marks(
        {row.submission for key, row in pairs if key in view.assigned},
        {row.submission: view.reviews.get(key, (0, 0)) for key, row in pairs},
    )
    show_html(page.ranking(rows, conflicts, links, overlaps, TableUnits.of(rows), ctx.lang, marks))


@dataclass(frozen=True)
class Marks:
    """The juror's own dossiers, and each row's reviews (done, assigned), by shown key."""

    assigned: set[str]
    reviews: dict[str, tuple[int, int]]
