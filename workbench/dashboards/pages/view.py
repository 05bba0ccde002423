"""The page's view: every page a juror moves to is drawn into it, in the same kernel.

The first page is the cell's own outputs (in the served HTML, drawn as it arrives);
after it the kernel displays two widgets: a hidden `Text` (`wb-nav`) and an empty
`Output`. Following a dashboard link (`data-wb-page`) or the browser's back button, the
page's script (`workbench.js`) writes the link's query string into the hidden field, a
widget message the kernels accept (an `execute_request` would be dropped); the kernel
draws that page and sets the `Output`'s outputs at once, the script removes the first
page's outputs, and the address follows with `history.pushState`. The query string is
checked like a fresh page load's: the token again, then the page it asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.dashboards.pages import common


def _close(widget: Any) -> None:
    """Close a widget and its children: the previous page's form leaves the kernel."""
    for child in getattr(widget, "children", ()):
        _close(child)
    widget.close()


class PageView:
    """The hidden navigation field and the output every page is drawn into."""

    def __init__(self, draw: Callable[[str], None]) -> None:
        import ipywidgets as widgets

        self.nav = widgets.Text(layout=widgets.Layout(display="none"))
        self.nav.add_class("wb-nav")
        self.output = widgets.Output()
        self.output.add_class("wb-view")
        self._draw = draw
        self._widgets: list[Any] = []
        self.nav.observe(self._navigate, "value")

    def show(self) -> None:
        from IPython.display import display

        display(self.nav, self.output)

    def _navigate(self, change: dict[str, Any]) -> None:
        # "<counter>|<query string>": the counter makes a repeated visit a change too.
        self.draw(str(change["new"]).partition("|")[2])

    def draw(self, query_string: str) -> None:
        """Draw a page into the output: its outputs are collected, then set in one message."""
        previous = self._widgets
        shown: list[dict[str, Any]] = []
        self._widgets = []
        with common.collecting(shown, self._widgets):
            self._draw(query_string)
        self.output.outputs = tuple(shown)
        for widget in [*previous, *common.take_direct_widgets()]:
            _close(widget)


_view: PageView | None = None


def page_view(draw: Callable[[str], None]) -> tuple[PageView, bool]:
    """The kernel's view, made on first use; True if it has just been made."""
    global _view
    if _view is None:
        _view = PageView(draw)
        return _view, True
    return _view, False
