"""The call page: the Pareto chart and the ranking, sorted and filtered in the browser."""

from __future__ import annotations

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
    from workbench.results import call_results

    rows = ranked(call_results(ctx.store, ctx.call.id, ctx.call.protocol.reference_machine))
    page = macros("call")
    show_html(page.top(ctx.call, juror, language_links(token), ctx.lang))
    show_figure(pareto_figure(rows, ctx.lang))
    conflicts = {r.submission for r in rows if juror.has_conflict(r.submission)}
    links = {r.submission: page_link(token, r.submission, ctx.lang) for r in rows}
    overlaps = energy_overlaps(rows)
    show_html(page.ranking(rows, conflicts, links, overlaps, TableUnits.of(rows), ctx.lang))
