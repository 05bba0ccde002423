"""The page's entry points: warming a kernel up, and checking the juror's token."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from workbench.dashboards.pages.common import (
    TEMPLATES,
    chosen_language,
    context,
    macros,
    show_html,
)
from workbench.errors import NotFoundError

log = logging.getLogger(__name__)


def preload() -> None:
    """What needs neither the store nor the call: imports, templates, a first figure.

    Done once by the dashboard kernels' zygote (`dashboards.forking`), so that every
    kernel forked from it has it already; done again (at no cost then) by `warm_up`.
    """
    import ipywidgets  # noqa: F401
    import nbformat  # noqa: F401
    import nh3  # noqa: F401
    import plotly.graph_objects as go

    import workbench.jury
    import workbench.results
    import workbench.store  # noqa: F401
    from workbench.dashboards.pages import call, scoring, submission, view  # noqa: F401
    from workbench.html.render import environment, static_text

    figure = go.Figure([go.Scatter(x=[0, 1], y=[0, 1]), go.Bar(x=["a"], y=[1])])
    figure.update_layout(title="warm-up", xaxis_title="x", yaxis_title="y")
    figure.to_json()
    for name in TEMPLATES:  # compiled once, before any request
        environment().get_template(name)
    for name in ("dashboard.css", "ranking.js"):
        static_text(name)


def warm_up() -> None:
    """Everything that does not depend on the request, done before it arrives."""
    import ipywidgets

    import workbench.jury

    preload()
    # Imported before this process was a kernel (in the zygote), ipywidgets found no
    # kernel to register its comm targets with: register them now.
    ipywidgets.register_comm_target()
    ctx = context()
    workbench.jury.jury_summary(ctx.store, ctx.call.id)  # first query: connection, mappers


def render(query_string: str | None) -> None:
    """The page a fresh load asks for, as the cell's own outputs, then the page's view.

    The cell's outputs travel in the served HTML, drawn as the browser reads it; pages
    the juror moves to afterwards are drawn in the view (`view.PageView`), in this
    kernel. A refused token gets its notice and no view: there is nowhere to go.
    """
    from workbench.dashboards.pages.view import page_view
    from workbench.jury import AccessDenied, authenticate

    ctx = context()
    ctx.lang = chosen_language(parse_qs(query_string or "")) or ctx.lang
    try:
        authenticate(ctx.store, ctx.call.id, _token(query_string))
    except AccessDenied:
        show_html(macros("common").denied(ctx.lang))
        return
    draw(query_string or "")
    view, made = page_view(draw)
    if made:
        view.show()


def _token(query_string: str | None) -> str | None:
    return next(iter(parse_qs(query_string or "").get("token") or []), None)


def draw(query_string: str) -> None:
    """Draw the page the query string asks for, for the juror whose token it carries."""
    from workbench.dashboards.pages.call import call_page
    from workbench.dashboards.pages.submission import submission_page
    from workbench.jury import AccessDenied, authenticate

    ctx = context()
    params = parse_qs(query_string.lstrip("?"))
    # The language asked for sticks for the kernel: pages reached without `lang=` keep it.
    ctx.lang = chosen_language(params) or ctx.lang
    token = next(iter(params.get("token") or []), None)
    try:
        juror = authenticate(ctx.store, ctx.call.id, token)
    except AccessDenied:
        show_html(macros("common").denied(ctx.lang))
        return
    assert token is not None
    submission = next(iter(params.get("submission") or []), None)
    try:
        if submission:
            submission_page(ctx, juror, token, submission)
        else:
            call_page(ctx, juror, token)
    except NotFoundError:
        show_html(macros("common").message("not_found", ctx.lang))
    except Exception:
        log.exception("dashboard page failed")
        show_html(macros("common").message("error", ctx.lang))
