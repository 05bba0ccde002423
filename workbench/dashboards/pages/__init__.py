"""The jury dashboard's two pages, rendered inside the dashboard notebook's kernel.

The notebook (`dashboard.ipynb`) calls `warm_up()` in its first cell, which a preheated
kernel runs before any request (imports, the store, the call, the templates, a first
plotly figure), and `render(query_string)` in its second cell, once Voilà hands it the
request's query string. `render` checks the token against the store (`auth`), then shows
the call page (`call`: the ranking) or, with `submission=CALL/ID`, that submission's page
(`submission`) and its scoring form (`scoring`).

Pages only read the store (through its methods) and stored artifacts; nothing here
executes a submission. All markup comes from the autoescaped templates of `workbench.html`.
"""

from workbench.dashboards.pages.auth import render, warm_up
from workbench.dashboards.pages.common import CALL_ENV, LANG_ENV, figure_html

__all__ = ["CALL_ENV", "LANG_ENV", "figure_html", "render", "warm_up"]
