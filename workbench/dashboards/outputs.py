"""The applicant's executed notebook, turned into outputs a juror can safely look at.

The notebook is read with nbformat and never executed. Each output becomes an `Item`:

- text (streams, plain text, error tracebacks) is shown escaped, ANSI codes removed;
- HTML goes through the `nh3` sanitiser (the Ammonia allow-list): no `<script>`, no
  `<style>`, no event handler attribute, no `javascript:` link, no remote or relative
  image (only `data:image/...`), links get `rel="noopener noreferrer"`; HTML that
  carries Jupyter's fallback for untrusted notebooks (scikit-learn's estimators) gives
  way to the object's plain text;
- PNG and JPEG images are checked to be base64 and shown as `data:` images; SVG is shown
  through an `<img>` too, where a browser runs none of its scripts;
- plotly figures are rebuilt from their JSON by `plotly.graph_objects.Figure` (which
  rejects unknown properties) and every string in them is sanitised with a few inline
  tags only, then drawn again by the dashboard;
- anything that would need the applicant's code or scripts in the browser (widgets,
  JavaScript, unknown types) is replaced by a short note.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workbench.recording import MIME_TYPE as RECORD_MIME

ItemKind = Literal["text", "html", "image", "plotly", "withheld"]

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Inline tags that plotly itself understands in titles, labels and hover texts.
PLOTLY_TAGS = {"b", "i", "em", "strong", "br", "sub", "sup", "span"}
# The text a rich object's HTML (scikit-learn's estimators) carries for untrusted notebooks:
# meaningless to a juror, so such an object is shown by its plain-text form instead.
JUPYTER_FALLBACK = re.compile(
    r'class\s*=\s*["\'][^"\']*\bsk-text-repr-fallback\b|please rerun this cell to show the HTML'
    r"|trust the notebook",
    re.IGNORECASE,
)
MAX_TEXT = 20_000
MAX_ITEMS = 200


@dataclass(frozen=True)
class Item:
    cell: int  # the code cell's index in the notebook
    kind: ItemKind
    content: Any  # str for text/html/image (an <img> tag)/withheld, a dict for plotly


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    lowered = value.strip().lower()
    if tag == "img" and attribute == "src":
        return value if lowered.startswith("data:image/") else None
    if lowered.startswith("data:"):
        return None
    return value


def clean_html(html: str) -> str:
    """Sanitised HTML: the allow-listed tags and attributes only, no script of any kind."""
    import nh3

    return nh3.clean(
        html,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=_attribute_filter,
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
    )


def _clean_strings(value: Any) -> Any:
    import nh3

    if isinstance(value, str):
        if "<" not in value and "&" not in value:
            return value
        return nh3.clean(value, tags=PLOTLY_TAGS, attributes={}, url_schemes=set())
    if isinstance(value, list):
        return [_clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean_strings(v) for k, v in value.items()}
    return value


# Traces plotly.js draws over tiles or outlines it fetches from the internet.
REMOTE_TRACES = frozenset(
    {
        "scattergeo",
        "choropleth",
        "scattermapbox",
        "choroplethmapbox",
        "densitymapbox",
        "scattermap",
        "choroplethmap",
        "densitymap",
    }
)


def _local_source(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith("data:image/")


def _local_only(spec: dict[str, Any]) -> dict[str, Any]:
    """The figure without anything that makes the juror's browser fetch from elsewhere.

    Layout images and image traces keep only `data:image/...` sources (a remote address
    would be fetched by the browser, telling its owner who reads the dossier and when);
    map and geo traces, whose tiles and outlines come from the internet, are dropped.
    """
    data = spec.get("data")
    if isinstance(data, list):
        kept = []
        for trace in data:
            if isinstance(trace, dict):
                if trace.get("type") in REMOTE_TRACES:
                    continue
                if "source" in trace and not _local_source(trace["source"]):
                    trace = {k: v for k, v in trace.items() if k != "source"}
            kept.append(trace)
        spec = {**spec, "data": kept}
    layout = spec.get("layout")
    if isinstance(layout, dict):
        layout = {k: v for k, v in layout.items() if k not in ("mapbox", "map", "geo")}
        images = layout.get("images")
        if isinstance(images, list):
            layout["images"] = [
                image
                for image in images
                if isinstance(image, dict) and _local_source(image.get("source"))
            ]
        spec = {**spec, "layout": layout}
    return spec


def clean_figure(spec: Any) -> dict[str, Any] | None:
    """A plotly figure's JSON, validated by plotly, its strings sanitised; None if invalid."""
    import plotly.graph_objects as go

    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            return None
    if not isinstance(spec, dict):
        return None
    spec = _local_only({k: spec[k] for k in ("data", "layout") if k in spec})
    try:
        figure = go.Figure(_clean_strings(spec))
    except (ValueError, TypeError):
        return None
    result: dict[str, Any] = json.loads(figure.to_json())
    return result


def _text(value: Any) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    text = ANSI.sub("", text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[...]"
    return text


def _image(mime: str, data: Any) -> str | None:
    payload = _text(data) if not isinstance(data, str) else data
    if mime == "image/svg+xml":
        payload = base64.b64encode(payload.encode("utf-8")).decode("ascii")
    elif not BASE64.match(payload):
        return None
    else:
        try:
            base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            return None
    compact = "".join(payload.split())
    return f'<img class="wb-output-image" alt="" src="data:{mime};base64,{compact}">'


def _from_bundle(cell: int, data: dict[str, Any]) -> Item | None:
    if PLOTLY_MIME in data:
        figure = clean_figure(data[PLOTLY_MIME])
        if figure is not None:
            return Item(cell, "plotly", figure)
    for mime in ("image/png", "image/jpeg", "image/svg+xml"):
        if mime in data:
            tag = _image(mime, data[mime])
            if tag is not None:
                return Item(cell, "image", tag)
    if "text/html" in data:
        html = _text(data["text/html"])
        if not ("text/plain" in data and JUPYTER_FALLBACK.search(html)):
            return Item(cell, "html", clean_html(html))
    if "text/plain" in data:
        return Item(cell, "text", _text(data["text/plain"]))
    shown = [m for m in data if m != RECORD_MIME]
    if shown:
        return Item(cell, "withheld", ", ".join(sorted(shown)))
    return None


def notebook_items(notebook: Any) -> list[Item]:
    """The displayable outputs of an executed notebook (an nbformat node), in order."""
    items: list[Item] = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            item: Item | None = None
            if kind == "stream":
                item = Item(index, "text", _text(output.get("text", "")))
            elif kind == "error":
                lines = output.get("traceback") or [
                    f"{output.get('ename', '')}: {output.get('evalue', '')}"
                ]
                item = Item(index, "text", _text("\n".join(lines)))
            elif kind in ("display_data", "execute_result"):
                data = dict(output.get("data", {}))
                if "application/vnd.jupyter.widget-view+json" in data:
                    item = Item(index, "withheld", "widget")
                else:
                    item = _from_bundle(index, data)
            if item is not None and (item.kind != "text" or item.content.strip()):
                items.append(item)
            if len(items) >= MAX_ITEMS:
                return items
    return items


def read_items(path: Path) -> list[Item] | None:
    """The outputs of the executed notebook at `path`, or None when it cannot be read."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None
    return notebook_items(notebook)
