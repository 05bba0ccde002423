"""What every page shares: the kernel's context, showing HTML and figures, links."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from workbench.i18n import DEFAULT_LANGUAGE
from workbench.vocabulary import LANGUAGES

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.store import Store
    from workbench.workspace import Workspace

CALL_ENV = "WORKBENCH_CALL"
LANG_ENV = "WORKBENCH_LANG"
TEMPLATES = (
    "dashboard/common.html.j2",
    "dashboard/call.html.j2",
    "dashboard/submission.html.j2",
    "dashboard/scoring.html.j2",
)


@dataclass
class Context:
    workspace: Workspace
    store: Store
    call: Call
    lang: str  # `--lang` at first; a page asked for with `lang=` sets it for the kernel


_context: Context | None = None


def context() -> Context:
    """The page context from the environment `workbench serve` sets; opened once per kernel."""
    global _context
    if _context is None:
        from workbench.store import open_store
        from workbench.workspace import Workspace

        workspace = Workspace.from_env()
        call = workspace.call(os.environ[CALL_ENV])
        lang = os.environ.get(LANG_ENV, DEFAULT_LANGUAGE)
        store = open_store(workspace.db_url)
        _context = Context(workspace, store, call, lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    return _context


def macros(name: str) -> Any:
    """The macros of a dashboard template (`call`, `submission`, `scoring`, `common`)."""
    from workbench.html.render import macros as template_macros

    return template_macros(f"dashboard/{name}.html.j2")


# The page being drawn into the view (`view.PageView`): its outputs, and its widgets.
_collected: tuple[list[dict[str, Any]], list[Any]] | None = None


@contextmanager
def collecting(outputs: list[dict[str, Any]], widgets: list[Any]) -> Iterator[None]:
    """Pages shown inside this block become output dicts, not the cell's own outputs."""
    global _collected
    before, _collected = _collected, (outputs, widgets)
    try:
        yield
    finally:
        _collected = before


def show_html(markup: str) -> None:
    """One output of the page: the front end inserts it and runs its scripts."""
    if _collected is not None:
        data = {"text/html": str(markup), "text/plain": ""}
        _collected[0].append({"output_type": "display_data", "data": data, "metadata": {}})
        return
    from IPython.display import HTML, display

    display(HTML(str(markup)))


def show_widget(widget: Any) -> None:
    """A widget of the page (the scoring form), closed when the view draws another page."""
    if _collected is not None:
        data = widget._repr_mimebundle_()
        _collected[0].append({"output_type": "display_data", "data": data, "metadata": {}})
        _collected[1].append(widget)
        return
    from IPython.display import display

    display(widget)
    _direct_widgets.append(widget)


# Widgets of the page drawn as the cell's outputs, closed when the view draws another.
_direct_widgets: list[Any] = []


def take_direct_widgets() -> list[Any]:
    taken = list(_direct_widgets)
    _direct_widgets.clear()
    return taken


def figure_html(spec: dict[str, Any]) -> str:
    """A chart's placeholder and the call that draws it once with the page's plotly.js.

    The figure's JSON travels in an attribute, escaped by the template: none of its
    strings (an applicant's included) can close the element or open a script. `wbPlot`
    is defined by the page template (`share/voila/templates/workbench/static/workbench.js`).
    """
    return str(macros("common").figure(json.dumps(spec, separators=(",", ":"))))


def show_figure(figure: Any) -> None:
    """Display a plotly figure: an object of the dashboard's own, or an applicant's JSON.

    The dashboard's own figures are sent without plotly.py's layout template: their few
    styles are set explicitly (`charts.LIGHT`), and a template makes the browser apply
    defaults for every trace type it lists. An applicant's figure (a dict) is drawn as it
    was saved.
    """
    if isinstance(figure, dict):
        spec = figure
    else:
        spec = json.loads(figure.to_json())
        spec.get("layout", {}).pop("template", None)
    show_html(figure_html(spec))


def page_link(token: str, submission: str | None = None, lang: str | None = None) -> str:
    """A page's address; the page's script follows it inside the same kernel (`view`).

    It carries the page's language, so a copied or reloaded link opens in it too.
    """
    query = {"token": token}
    if lang:
        query["lang"] = lang
    if submission:
        query["submission"] = submission
    return "?" + urlencode(query)


def language_links(token: str, submission: str | None = None) -> list[tuple[str, str]]:
    """The same page in each language, for the header's "FR | EN"."""
    return [(code, page_link(token, submission, code)) for code in LANGUAGES]


def chosen_language(params: dict[str, list[str]]) -> str | None:
    """The language a query string asks for (`lang=`), if it is one the pages speak."""
    lang = next(iter(params.get("lang") or []), None)
    return lang if lang in LANGUAGES else None
