"""Jury dashboards: tokens, conflicts, scores (unit), then the real pages in Chromium.

The browser tests start `workbench serve` on a free port of 127.0.0.1 over a workspace
whose submissions really ran, and drive /usr/bin/chromium with Playwright.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import NOTEBOOKS, ROOT, TEST_CALL, MakeSubmission, write_yaml
from workbench import charts
from workbench.cli import main
from workbench.dashboards import outputs, pages
from workbench.dashboards.server import POOL_FILL_DELAY_S, voila_config
from workbench.errors import InvalidError, NotFoundError
from workbench.i18n import TEXTS, t
from workbench.jury import (
    AccessDenied,
    ConflictOfInterest,
    add_juror,
    authenticate,
    current_scores,
    hash_token,
    jury_summary,
    progress,
    save_score,
    weighted_total,
)
from workbench.store import JurorRow, ScoreRow, open_store
from workbench.submissions import load_submission
from workbench.vocabulary import LANGUAGES
from workbench.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots of the pages go to the test's own folder; to refresh the documentation's,
# run the browser tests with WORKBENCH_SCREENSHOTS=docs/img (relative to the checkout).
SCREENSHOTS_ENV = "WORKBENCH_SCREENSHOTS"


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    wanted = os.environ.get(SCREENSHOTS_ENV)
    folder = ROOT / wanted if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))


# ---------------------------------------------------------------- unit tests


def _registered(workspace: Workspace, make_submission: MakeSubmission, *ids: str) -> None:
    """Register submissions in the store as a run would, without running them."""
    store = open_store(workspace.db_url)
    try:
        for sub_id in ids:
            folder = make_submission(sub_id)
            store.register(workspace.call("test-call"), load_submission(folder))
    finally:
        store.close()


def test_only_the_hash_of_a_token_is_stored(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _registered(workspace, make_submission, "a")
    juror, token = add_juror(workspace, "test-call", "Alice")
    assert len(token) >= 40
    store = open_store(workspace.db_url)
    try:
        with store.session() as s:
            rows = s.query(JurorRow).all()
        assert [r.token_sha256 for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
        dump = (workspace.root / "workbench.db").read_bytes()
        assert token.encode() not in dump
        assert authenticate(store, "test-call", token) == juror
        for wrong in (None, "", token[:-1] + ("A" if token[-1] != "A" else "B"), hash_token(token)):
            with pytest.raises(AccessDenied):
                authenticate(store, "test-call", wrong)
        with pytest.raises(AccessDenied):  # a token is for one call only
            authenticate(store, "other-call", token)
    finally:
        store.close()


def test_jurors_names_and_conflicts_are_checked(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _registered(workspace, make_submission, "a", "b")
    juror, _ = add_juror(workspace, "test-call", "Bob", conflicts=["b", "test-call/a"])
    assert juror.conflicts == ("test-call/a", "test-call/b")
    with pytest.raises(NotFoundError):
        add_juror(workspace, "test-call", "Carol", conflicts=["nope"])
    with pytest.raises(NotFoundError):
        add_juror(workspace, "no-such-call", "Carol")
    with pytest.raises(Exception, match="already has a juror"):
        add_juror(workspace, "test-call", "Bob")


def test_weighted_total_uses_the_calls_weights_and_scales() -> None:
    from workbench.calls import Call

    call = Call.model_validate(TEST_CALL)  # benefit 0.6, frugality 0.4, both on 0..5
    assert weighted_total(call, {"benefit": 5, "frugality": 0}) == 60.0
    assert weighted_total(call, {"benefit": 0, "frugality": 5}) == 40.0
    assert weighted_total(call, {"benefit": 2.5 * 2, "frugality": 2.5}) == pytest.approx(80.0)
    mixed = Call.model_validate(
        {
            **TEST_CALL,
            "rubric": [
                {**TEST_CALL["rubric"][0], "scale": {"min": 0, "max": 100, "step": 1}},
                TEST_CALL["rubric"][1],
            ],
        }
    )
    assert weighted_total(mixed, {"benefit": 50, "frugality": 5}) == pytest.approx(70.0)


def test_scores_are_checked_appended_and_conflicts_refused(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _registered(workspace, make_submission, "a", "b")
    call = workspace.call("test-call")
    alice, alice_token = add_juror(workspace, "test-call", "Alice")
    bob, bob_token = add_juror(workspace, "test-call", "Bob", conflicts=["b"])
    store = open_store(workspace.db_url)
    try:
        first = save_score(store, call, alice_token, "test-call/a", {"benefit": 1, "frugality": 2})
        second = save_score(
            store, call, alice_token, "test-call/a", {"benefit": 4, "frugality": 5}, " ok "
        )
        save_score(store, call, bob_token, "test-call/a", {"benefit": 3, "frugality": 3})
        assert second.id > first.id and second.comment == "ok"
        with pytest.raises(ConflictOfInterest):
            save_score(store, call, bob_token, "test-call/b", {"benefit": 3, "frugality": 3})
        with pytest.raises(AccessDenied):
            save_score(store, call, "forged", "test-call/a", {"benefit": 3, "frugality": 3})
        with pytest.raises(InvalidError) as bad:
            save_score(store, call, alice_token, "test-call/a", {"benefit": 7, "extra": 1})
        text = str(bad.value)
        assert "values.benefit: 7 is not on the scale" in text
        assert "values.frugality: not scored" in text
        assert "values.extra: not a criterion" in text
        with pytest.raises(InvalidError, match="not on the scale"):
            save_score(store, call, alice_token, "test-call/a", {"benefit": 1.5, "frugality": 1})
        with pytest.raises(NotFoundError):
            save_score(store, call, alice_token, "test-call/zz", {"benefit": 1, "frugality": 1})
        # Append-only: both of Alice's saves are kept; the latest is her current score.
        rows = store.scores(call_id="test-call")
        assert [(r.juror_id, r.values) for r in rows] == [
            (alice.id, {"benefit": 1.0, "frugality": 2.0}),
            (alice.id, {"benefit": 4.0, "frugality": 5.0}),
            (bob.id, {"benefit": 3.0, "frugality": 3.0}),
        ]
        current = current_scores(store, "test-call")["test-call/a"]
        assert current[alice.id].id == second.id
        summary = jury_summary(store, "test-call")
        assert summary["test-call/a"] == {"jurors": 2, "score": pytest.approx((88 + 60) / 2)}
        assert "test-call/b" not in summary
    finally:
        store.close()
    by_name = {p.juror.name: p for p in progress(workspace, "test-call")}
    assert (by_name["Alice"].scored, by_name["Alice"].to_score, by_name["Alice"].saves) == (1, 2, 2)
    assert (by_name["Bob"].scored, by_name["Bob"].to_score) == (1, 1)


def test_two_jurors_saving_at_once_from_threads_lose_nothing(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _registered(workspace, make_submission, "a")
    call = workspace.call("test-call")
    tokens = [add_juror(workspace, "test-call", name)[1] for name in ("Alice", "Bob")]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def save_many(token: str) -> None:
        store = open_store(workspace.db_url)  # each juror's kernel has its own connection
        try:
            barrier.wait()
            for i in range(25):
                save_score(store, call, token, "test-call/a", {"benefit": i % 6, "frugality": 1})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=save_many, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert open_store(workspace.db_url).count(ScoreRow) == 50


SAVER = """
import sys
from workbench.jury import save_score
from workbench.store import open_store
from workbench.workspace import Workspace

workspace = Workspace.from_env(sys.argv[1])
call = workspace.call("test-call")
store = open_store(workspace.db_url)
print("ready", flush=True)
sys.stdin.readline()
for i in range(30):
    save_score(store, call, sys.argv[2], "test-call/a", {"benefit": i % 6, "frugality": 2})
store.close()
"""


def test_two_jurors_saving_at_once_from_processes_lose_nothing(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _registered(workspace, make_submission, "a")
    tokens = [add_juror(workspace, "test-call", name)[1] for name in ("Alice", "Bob")]
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_HOME")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(workspace.root), token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for token in tokens
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both start writing at the same moment
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    store = open_store(workspace.db_url)
    try:
        rows = store.scores(submission_key="test-call/a")
        assert len(rows) == 60
        assert sorted({r.juror_id for r in rows}) == [1, 2]
    finally:
        store.close()


def test_applicant_outputs_are_sanitised() -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            {
                "text/html": "<script>alert(1)</script><img src=x onerror=alert(2)>"
                '<a href="javascript:alert(3)">a</a><b>kept</b><style>b{}</style>'
                '<img src="https://tracker.example/p.png"><img src="data:image/png;base64,AAAA">',
                "text/plain": "ignored",
            },
        ),
        nbformat.v4.new_output("display_data", {"application/javascript": "alert(4)"}),
        nbformat.v4.new_output("display_data", {"image/png": 'AAAA" onerror="alert(5)'}),
        nbformat.v4.new_output("display_data", {"image/svg+xml": "<svg onload='alert(6)'/>"}),
        nbformat.v4.new_output("stream", name="stdout", text="\x1b[31m<script>x</script>\x1b[0m"),
        nbformat.v4.new_output(
            "display_data",
            {
                "application/vnd.plotly.v1+json": {
                    "data": [{"type": "bar", "x": ["<img src=x onerror=alert(7)>"], "y": [1]}],
                    "layout": {"title": {"text": "<a href='javascript:alert(8)'>t</a><b>T</b>"}},
                }
            },
        ),
        nbformat.v4.new_output(
            "display_data", {"application/vnd.plotly.v1+json": {"data": [{"type": "nope"}]}}
        ),
    ]
    nb.cells = [cell]
    items = outputs.notebook_items(nb)
    kinds = [i.kind for i in items]
    assert kinds == ["html", "withheld", "withheld", "image", "text", "plotly", "withheld"]
    html = items[0].content
    assert "<b>kept</b>" in html and 'src="data:image/png;base64,AAAA"' in html
    for bad in ("<script", "onerror", "javascript:", "<style", "tracker.example", "alert(1)"):
        assert bad not in html
    assert items[2].content == "image/png"  # not base64: not shown
    assert items[3].content.startswith('<img class="wb-output-image" alt="" src="data:image/svg')
    assert "onload" not in items[3].content  # the SVG is base64 inside an <img>
    assert items[4].content == "<script>x</script>"  # text: shown escaped, ANSI removed
    figure = str(items[5].content)
    assert "onerror" not in figure and "javascript:" not in figure and "<b>T</b>" in figure


def test_an_applicants_figure_fetches_nothing_from_elsewhere() -> None:
    dot = "data:image/png;base64,iVBORw0KGgo="
    figure = outputs.clean_figure(
        {
            "data": [
                {"type": "scatter", "x": [0, 1], "y": [1, 2]},
                {"type": "image", "source": "https://tracker.example/i.png"},
                {"type": "scattergeo", "lat": [48.8], "lon": [2.3]},
                {"type": "scattermap", "lat": [48.8], "lon": [2.3]},
            ],
            "layout": {
                "images": [
                    {"source": "https://tracker.example/a.png", "x": 0, "y": 0},
                    {"source": "//tracker.example/b.png", "x": 0, "y": 0},
                    {"source": dot, "x": 0, "y": 0},
                ],
                "geo": {"showland": True},
            },
        }
    )
    assert figure is not None
    assert "tracker.example" not in json.dumps(figure)
    assert [trace["type"] for trace in figure["data"]] == ["scatter", "image"]
    assert [image["source"] for image in figure["layout"]["images"]] == [dot]
    assert "geo" not in figure["layout"]


def test_a_rich_objects_jupyter_fallback_gives_way_to_its_plain_text() -> None:
    import nbformat

    estimator = (
        '<style>#sk-1 {color: black;}</style><div id="sk-1" class="sk-top-container">'
        '<div class="sk-text-repr-fallback"><pre>LinearRegression()</pre><b>In a Jupyter '
        "environment, please rerun this cell to show the HTML representation or trust the "
        'notebook.</b></div><div class="sk-container" hidden>LinearRegression</div></div>'
    )
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result", {"text/html": estimator, "text/plain": "LinearRegression()"}
        ),
        nbformat.v4.new_output(
            "display_data", {"text/html": "<b>a table</b>", "text/plain": "a table"}
        ),
        nbformat.v4.new_output("display_data", {"text/html": estimator}),  # nothing else
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    items = outputs.notebook_items(nb)
    assert [(i.kind, i.content) for i in items[:2]] == [
        ("text", "LinearRegression()"),
        ("html", "<b>a table</b>"),
    ]
    assert items[2].kind == "html" and "<style" not in items[2].content


def test_each_answer_sits_in_its_own_questions_row() -> None:
    from workbench.calls import Call
    from workbench.dashboards.pages.common import macros

    labelled = {
        "id": "sharing",
        "type": "choice",
        "choices": ["open-licence", "closed"],
        "choice_labels": {"open-licence": {"fr": "Licence ouverte", "en": "Open licence"}},
        "text": {"fr": "Partage ?", "en": "Sharing?"},
    }
    questions = [
        *TEST_CALL["questionnaire"],
        {"id": "purpose", "type": "text", "text": {"fr": "But ?", "en": "Purpose?"}},
        labelled,
    ]
    call = Call.model_validate({**TEST_CALL, "questionnaire": questions})
    given = {"open-data": False, "hosting": "on-premises", "sharing": "open-licence"}
    rows = {
        lang: re.findall(
            r'<tr data-question="([^"]+)"><th>([^<]*)</th><td>(.*?)</td></tr>',
            str(macros("submission").answers(call, given, lang)),
        )
        for lang in ("fr", "en")
    }
    assert rows["fr"] == [
        ("open-data", "Données ouvertes ?", "Non"),
        ("hosting", "Hébergement ?", "on premises"),
        ("purpose", "But ?", '<span class="wb-muted">non renseigné</span>'),
        ("sharing", "Partage ?", "Licence ouverte"),
    ]
    assert [(q, a) for _, q, a in rows["en"]] == [
        ("Open data?", "No"),
        ("Hosting?", "on premises"),
        ("Purpose?", '<span class="wb-muted">not answered</span>'),
        ("Sharing?", "Open licence"),
    ]
    with pytest.raises(ValueError, match="labels for choices it does not offer: nope"):
        wrong = {**labelled, "choice_labels": {"nope": labelled["text"]}}
        Call.model_validate({**TEST_CALL, "questionnaire": [wrong]})


def test_pareto_front_keeps_the_points_nothing_beats() -> None:
    points = [(1.0, 10.0), (2.0, 5.0), (3.0, 20.0), (0.5, 1.0), (3.0, 15.0), (4.0, 20.0)]
    assert charts.pareto_front(points) == [(0.5, 1.0), (1.0, 10.0), (3.0, 20.0)]
    assert charts.pareto_front([]) == []


def test_voila_is_configured_for_juries() -> None:
    config = voila_config(8999, pool_size=3)
    assert config["Voila"]["ip"] == "127.0.0.1" and config["Voila"]["port"] == 8999
    voila = config["VoilaConfiguration"]
    assert voila["strip_sources"] is True and voila["show_tracebacks"] is False
    assert voila["file_allowlist"] == [] and voila["file_denylist"] == [r".*"]
    assert voila["preheat_kernel"] is True and voila["default_pool_size"] == 3
    headers = config["Voila"]["tornado_settings"]["headers"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert voila["template"] == "workbench" and voila["allow_template_override"] == "NO"
    assert voila["allow_theme_override"] == "NO"
    # Charts are drawn by the template's plotly.js, not by JupyterLab's plotly renderer.
    assert "jupyterlab-plotly" not in voila["extension_allowlist"]
    assert voila["multi_kernel_manager_class"].endswith("kernels.JuryKernelManager")
    kernels = config["JuryKernelManager"]
    assert kernels["cull_connected"] is True and kernels["cull_idle_timeout"] == 1800
    assert kernels["max_kernels"] == 40 and kernels["pool_size"] == 3 and kernels["preheat"]
    # Checked often enough for a closed page's kernel to go within a minute.
    assert kernels["closed_timeout"] + kernels["cull_interval"] <= 60
    small = voila_config(8999, 1, idle_timeout=600, closed_timeout=5, max_kernels=3)
    assert small["JuryKernelManager"]["cull_interval"] == 1


def test_plotly_js_is_staged_as_a_static_file_of_the_template(tmp_path: Path) -> None:
    from voila.paths import collect_static_paths, collect_template_paths

    from workbench.dashboards import server

    staged = server.stage_plotly_js(tmp_path)
    copy = staged / "voila" / "templates" / "workbench" / "static" / "plotly.min.js"
    assert copy.read_bytes() == server.plotly_js().read_bytes()
    roots = [str(server.TEMPLATE_DATA), str(staged)]
    templates = collect_template_paths(["voila", "nbconvert"], "workbench", True, roots)
    assert templates[0] == str(server.TEMPLATE_DATA / "voila" / "templates" / "workbench")
    static = collect_static_paths(["voila", "nbconvert"], "workbench", True, roots)
    assert str(copy.parent) in static


HOSTILE = '</script><script>window.__xss = 1</script>"\' onmouseover="window.__xss = 2'


def test_a_figure_travels_escaped_in_an_attribute() -> None:
    from html.parser import HTMLParser

    spec = {
        "data": [{"type": "bar", "x": [HOSTILE], "y": [1], "name": HOSTILE}],
        "layout": {"title": {"text": HOSTILE}, "meta": {"</div>": "&amp; <!--"}},
    }
    found: list[tuple[str, dict[str, str | None]]] = []
    scripts: list[str] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, dict(attrs)))

        def handle_data(self, data: str) -> None:
            if found and found[-1][0] == "script":
                scripts.append(data)

    markup = pages.figure_html(spec)
    Parser().feed(markup)
    assert [tag for tag, _ in found] == ["div", "script"]
    div = found[0][1]
    assert set(div) == {"class", "data-figure"}
    assert json.loads(div["data-figure"] or "") == spec
    assert scripts == ["wbPlot(document.currentScript.previousElementSibling);"]


def test_a_hostile_figure_is_drawn_and_runs_nothing(page: Any) -> None:
    """The placeholder in a real page, drawn by the template's script and plotly.js."""
    from workbench.dashboards import server

    static = server.TEMPLATE_DATA / "voila" / "templates" / "workbench" / "static"
    spec = {
        "data": [{"type": "bar", "x": [HOSTILE, "b"], "y": [1, 2], "name": HOSTILE}],
        "layout": {"title": {"text": "Hostile " + HOSTILE}},
    }
    page.set_content("<!DOCTYPE html><html><head></head><body></body></html>")
    page.add_script_tag(path=str(server.plotly_js()))
    page.add_script_tag(path=str(static / "workbench.js"))
    # Inserted as a cell's HTML output is: its scripts run once the markup is in the page.
    page.evaluate(
        "html => document.body.append(document.createRange().createContextualFragment(html))",
        pages.figure_html(spec),
    )
    _plots_drawn(page, 1)
    assert "Hostile" in (page.text_content(".js-plotly-plot .gtitle") or "")
    box = page.locator(".js-plotly-plot .bars .point").first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".js-plotly-plot .hoverlayer .hovertext")  # its strings, shown
    assert page.evaluate("window.__xss") is None
    assert page.locator("body > script").count() == 1  # the chart's own call, nothing else


def test_every_label_exists_in_every_language() -> None:
    for key, entry in TEXTS.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(entry.values()), key
    assert t("save", "fr") == "Enregistrer" and t("save", "en") == "Save"
    assert t("signed_in_as", "en", name="Ana") == "Juror: Ana"


def test_jury_commands(workspace: Workspace, make_submission: MakeSubmission) -> None:
    _registered(workspace, make_submission, "a")
    runner = CliRunner()
    base = ["-w", str(workspace.root)]
    added = runner.invoke(main, [*base, "jury", "add", "test-call", "Alice", "--conflict", "a"])
    assert added.exit_code == 0, added.output
    link = added.stdout.strip()
    assert link.startswith("http://127.0.0.1:8866/?token=")
    token = link.split("token=", 1)[1]
    store = open_store(workspace.db_url)
    try:
        assert authenticate(store, "test-call", token).conflicts == ("test-call/a",)
    finally:
        store.close()
    listed = runner.invoke(main, [*base, "jury", "list", "test-call"])
    assert listed.exit_code == 0 and "Alice" in listed.output and "0/0" in listed.output
    unknown = runner.invoke(main, [*base, "serve", "no-such-call"])
    assert unknown.exit_code == 2 and "unknown call" in unknown.output
    no_room = runner.invoke(main, [*base, "serve", "test-call", "--max-kernels", "2"])
    assert no_room.exit_code == 2 and "--max-kernels 2 leaves no kernel" in no_room.output
    bad = runner.invoke(main, [*base, "jury", "add", "test-call", "Bob", "--conflict", "zz"])
    assert bad.exit_code == 2 and "unknown submission" in bad.output


# ---------------------------------------------------------------- in a real browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, *, error_body: bool = False) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace") if error_body else ""


class Served:
    def __init__(self, root: Path, base: str, tokens: dict[str, str], pid: int) -> None:
        self.root = root
        self.base = base
        self.tokens = tokens
        self.pid = pid

    def kernels(self) -> set[str]:
        """The ids of the server's live kernels.

        A kernel started anew names its connection file on its command line; one forked
        by the zygote keeps the zygote's, so it is known by the ports it listens on, which
        Voilà's connection files (in a `voila_*` temporary folder) give.
        """
        import psutil

        ports: dict[int, str] = {}
        for path in Path(tempfile.gettempdir()).glob("voila_*/kernel-*.json"):
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # written or removed meanwhile
            ports[int(info.get("shell_port") or 0)] = path.stem.removeprefix("kernel-")
        found = set()
        for child in psutil.Process(self.pid).children(recursive=True):
            try:
                found.update(KERNEL_FILE.findall(" ".join(child.cmdline())))
                for conn in child.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports:
                        found.add(ports[conn.laddr.port])
            except psutil.Error:
                continue  # ended meanwhile
        return found

    def link(self, juror: str, submission: str | None = None) -> str:
        url = f"{self.base}/?token={self.tokens[juror]}"
        return url + (f"&submission={submission}" if submission else "")

    def scores(self) -> list[ScoreRow]:
        store = open_store(Workspace(self.root).db_url)
        try:
            return store.scores(call_id="test-call")
        finally:
            store.close()


KERNEL_FILE = re.compile(r"kernel-([0-9a-f-]{36})\.json")
PAGE_KERNEL = re.compile(r'"kernelId": ?"([0-9a-f-]{36})"')


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


# A figure whose strings try to close the chart's element and open a script of their own.
HOSTILE_FIGURE_CELL = """
if evil:
    text = '</script><script>window.__xss = 11</script>"><img src=x onerror="window.__xss = 12">'
    figure = {
        'data': [{'type': 'scatter', 'x': [0, 1], 'y': [1, 2], 'name': text, 'text': [text, 'b']}],
        'layout': {
            'title': {'text': 'Hostile figure ' + text}, 'meta': {'note': text},
            'images': [{'source': 'http://192.0.2.1/t.png', 'x': 0, 'y': 0, 'sizex': 1}],
        },
    }
    display({'application/vnd.plotly.v1+json': figure, 'text/plain': 'x'}, raw=True)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A workspace with three submissions that really ran, two jurors, and `workbench serve`."""
    import nbformat

    from workbench.batch import run_submission
    from workbench.dossiers import decide
    from workbench.runner.metering import FakeMeter, set_process_meter

    root = tmp_path_factory.mktemp("dash") / "ws"
    write_yaml(root / "calls" / "test-call.yaml", TEST_CALL)
    (root / "templates" / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "ok.ipynb", root / "templates" / "notebooks" / "ok.ipynb")
    for sub_id, team, parameters in (
        ("alpha", "Commune d'Alpha (fictive)", {"n": 40, "noise": 0.5, "evil": False}),
        ("beta", "Syndicat de Bêta (fictif)", {"n": 40, "noise": 2.5, "evil": False}),
        ("xss", "Équipe XSS (fictive)", {"n": 40, "noise": 1.0, "evil": True}),
    ):
        folder = root / "submissions" / "test-call" / sub_id
        folder.mkdir(parents=True)
        notebook = nbformat.read(NOTEBOOKS / "dashboard_scored.ipynb", as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(HOSTILE_FIGURE_CELL))
        nbformat.write(notebook, folder / "notebook.ipynb")
        write_yaml(
            folder / "submission.yaml",
            {
                "id": sub_id,
                "call": "test-call",
                "team": team,
                "organisation": team,
                "contact": "jury@example.org",
                "title": f"Projet {sub_id}",
                "template": "custom",
                "parameters": parameters,
                "answers": {"open-data": True, "hosting": "cloud"},
            },
        )
    workspace = Workspace(root)
    set_process_meter(FakeMeter(cpu_watts=20.0, ram_watts=5.0))  # energy on every machine
    try:
        for sub_id in ("alpha", "beta", "xss"):
            record = run_submission(workspace, f"test-call/{sub_id}")
            assert record.status == "succeeded", record.message
            assert record.energy is not None and record.energy.measured
            decide(workspace, f"test-call/{sub_id}", "submitted", actor="team")  # handed in
    finally:
        set_process_meter(None)
    tokens = {
        "alice": add_juror(workspace, "test-call", "Alice Martin")[1],
        "bob": add_juror(workspace, "test-call", "Bob Durand", conflicts=["beta"])[1],
    }
    with _serving(root, tokens, "--pool-size", "1") as running:
        yield running


@contextmanager
def _serving(root: Path, tokens: dict[str, str], *options: str) -> Iterator[Served]:
    """`workbench serve test-call` over `root` on a free port, until the block ends."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DB"}
    env["WORKBENCH_HOME"] = str(root)
    log_path = root.parent / f"serve-{port}.log"
    log = log_path.open("w")
    exe = Path(sys.executable).parent / "workbench"
    server = subprocess.Popen(
        [exe, "serve", "test-call", "--port", str(port), *options],
        env=env,
        cwd=root.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "workbench serve did not start listening"
                time.sleep(0.2)
        yield Served(root, f"http://127.0.0.1:{port}", tokens, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard tests need Debian's chromium "
            "(apt-get install -y chromium)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # The pages must not need the network; keep the browser off it.
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
            else route.abort()
        ),
    )
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


DRAWN_CHARTS = (
    "Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".filter(p => p.querySelector('svg.main-svg .cartesianlayer .subplot')).length"
)


def _plots_drawn(page: Any, count: int) -> None:
    """Until `count` charts have their SVG axes drawn."""
    page.wait_for_function(f"{DRAWN_CHARTS} >= {count}", timeout=60_000)


@pytest.mark.kernel
def test_the_call_page_ranks_every_submission_with_a_pareto_chart(
    served: Served, page: Any, tmp_path: Path
) -> None:
    from plotly.offline import get_plotlyjs_version

    requested: list[tuple[str, str]] = []
    page.on("request", lambda request: requested.append((request.url, request.resource_type)))
    page.goto(served.link("alice"))
    page.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    _plots_drawn(page, 1)
    # plotly.js is a static file of the page's template, loaded once; no script (plotly's
    # JupyterLab extension included) comes from anywhere else or from the internet.
    plotly = [url for url, _ in requested if "plotly" in url]
    assert len(plotly) == 1, plotly
    assert plotly[0].startswith(f"{served.base}/voila/templates/workbench/static/plotly.min.js?v=")
    assert page.evaluate("window.Plotly.version") == get_plotlyjs_version()
    scripts = [url for url, kind in requested if kind == "script"]
    assert scripts and all(url.startswith(served.base + "/") for url in scripts), scripts
    assert page.evaluate(DRAWN_CHARTS) == 1
    rows = page.locator("#wb-ranking tbody tr")
    assert rows.count() == 3
    text = page.inner_text("#wb-ranking")
    for expected in ("alpha", "beta", "xss", "Commune d'Alpha (fictive)", "mae", "réussi"):
        assert expected in text
    assert "Juré·e : Alice Martin" in page.inner_text("#wb-juror")
    legend = page.inner_text(".js-plotly-plot")
    assert "Front de Pareto" in legend and "Solution sans IA" in legend
    # Filter then sort, in the browser.
    page.fill("#wb-ranking thead tr:nth-child(2) th:nth-child(1) input", "alp")
    assert page.inner_text("#wb-shown") == "1"
    page.fill("#wb-ranking thead tr:nth-child(2) th:nth-child(1) input", "")
    page.click("#wb-ranking thead tr:first-child th:nth-child(1)")
    first = page.locator("#wb-ranking tbody tr").first.get_attribute("data-submission")
    assert first == "test-call/alpha"
    _screenshot(page, "jury-call-page.png", tmp_path)


@pytest.mark.kernel
def test_a_juror_scores_a_submission_and_the_score_is_stored(
    served: Served, page: Any, tmp_path: Path
) -> None:
    before = len(served.scores())
    page.goto(served.link("alice", "test-call/alpha"))
    page.wait_for_selector(".wb-save", timeout=60_000)
    _plots_drawn(page, 3)  # predictions, energy per phase, the applicant's own figure
    assert page.inner_text("#wb-title") == "Projet alpha"
    body = page.inner_text("#wb-submission-page")
    assert "Commune d'Alpha (fictive)" in body and "Données ouvertes ?" in body
    answers = page.locator("#wb-answers tr")
    assert [answers.nth(i).inner_text().split("\t") for i in range(answers.count())] == [
        ["Données ouvertes ?", "Oui"],
        ["Hébergement ?", "cloud"],
    ]
    assert "Méthode de mesure" in page.inner_text("#wb-method")
    page.locator(".wb-criterion-benefit button", has_text="4").click()
    page.locator(".wb-criterion-frugality button", has_text="3").click()
    page.fill(".wb-comment textarea", "Gain net, sobre.")
    page.locator(".wb-save").click()
    page.wait_for_selector("#wb-saved", timeout=30_000)
    assert "72 / 100" in page.inner_text("#wb-saved")  # 0.6 * 4/5 + 0.4 * 3/5
    _screenshot(page, "jury-submission-page.png", tmp_path)
    rows = served.scores()
    assert len(rows) == before + 1
    row = rows[-1]
    assert row.values == {"benefit": 4.0, "frugality": 3.0}
    assert row.comment == "Gain net, sobre." and row.weighted_total == 72.0
    assert row.submission_key == "test-call/alpha"
    store = open_store(Workspace(served.root).db_url)
    try:
        assert authenticate(store, "test-call", served.tokens["alice"]).id == row.juror_id
    finally:
        store.close()


@pytest.mark.kernel
def test_no_token_or_a_forged_token_sees_nothing(served: Served, page: Any) -> None:
    forged = served.tokens["alice"][:-2] + "xx"
    secrets = ("test-call/alpha", "Commune d", "Projet alpha", "Alice Martin", "mae")
    for query in (
        "/",
        "/?token=",
        f"/?token={forged}",
        f"/?token={forged}&submission=test-call/alpha",
    ):
        status, html = _get(served.base + query, error_body=True)
        assert status == 403
        assert "wb-denied" in html and "kernelId" not in html
        assert not any(s in html for s in secrets), query
        page.goto(served.base + query)
        page.wait_for_selector("#wb-denied", timeout=60_000)
        assert "Accès refusé" in page.inner_text("body")
        assert "Access denied" in page.inner_text("body")
        assert page.locator("#wb-ranking, .wb-save, .js-plotly-plot").count() == 0
    # Nothing but the pages is served: no notebook, source, call file, store or run.
    for path in (
        "/voila/files/dashboard.ipynb",
        "/voila/files/pages.py",
        "/dashboard.ipynb",
        "/voila/api/contents/dashboard.ipynb",
        "/voila/tree",
        "/voila/files/../../workbench.db",
        "/voila/templates/workbench/index.html.j2",  # the template: only its static/ files
        "/voila/templates/workbench/static/../conf.json",
        "/voila/templates/workbench/static/%2E%2E/index.html.j2",
    ):
        status, body = _get(served.base + path)
        assert status in (403, 404) or "wb-denied" in body or body == "", path
        assert "pages.render" not in body and "test-call" not in body, path
        assert "extends" not in body and "base_template" not in body, path
    status, body = _get(served.base + "/voila/templates/workbench/static/workbench.js")
    assert status == 200 and "wbPlot" in body


@pytest.mark.kernel
def test_a_conflict_of_interest_is_shown_and_cannot_be_scored(served: Served, page: Any) -> None:
    page.goto(served.link("bob"))
    page.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    beta = page.locator('#wb-ranking tbody tr[data-submission="test-call/beta"]')
    assert "conflit d'intérêts" in beta.inner_text()
    page.goto(served.link("bob", "test-call/beta"))
    page.wait_for_selector("#wb-conflict", timeout=60_000)
    assert page.locator(".wb-save").count() == 0


@pytest.mark.kernel
def test_the_applicants_scripts_never_run(served: Served, page: Any) -> None:
    page.goto(served.link("alice", "test-call/xss"))
    page.wait_for_selector(".wb-save", timeout=60_000)
    bold = page.locator(".wb-applicant b", has_text="applicant bold text")
    bold.wait_for(timeout=60_000)
    # predictions, energy, the applicant's figure, and two hostile ones, drawn from their JSON
    _plots_drawn(page, 5)
    hostile = page.locator(".js-plotly-plot", has_text="Hostile figure")
    assert hostile.count() == 1
    # Every image has loaded or failed: an onerror or onload handler would have fired.
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert page.evaluate("window.__xss") is None
    assert page.title() != "pwned"
    assert bold.get_attribute("id") is None  # the sanitiser keeps tags, not ids
    assert "<script>window.__xss = 10</script>" in page.inner_text("body")  # shown as text
    assert page.locator(".wb-applicant a", has_text="link").get_attribute("href") is None
    assert page.locator(".wb-applicant iframe, .wb-applicant script").count() == 0


@pytest.mark.kernel
def test_a_juror_moves_between_pages_in_one_kernel(served: Served, page: Any) -> None:
    documents: list[str] = []
    channels: set[str] = set()
    page.on(
        "request",
        lambda request: (
            documents.append(request.url) if request.resource_type == "document" else None
        ),
    )
    page.on(
        "websocket",
        lambda socket: channels.update(re.findall(r"/api/kernels/([0-9a-f-]{36})/", socket.url)),
    )
    page.goto(served.link("alice"))
    page.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    page.click('#wb-ranking a[data-wb-key="test-call/alpha"]')
    page.locator("#wb-title", has_text="Projet alpha").wait_for(timeout=60_000)
    assert page.locator("#wb-ranking").count() == 0  # the ranking was replaced, not kept
    assert page.url.endswith("submission=test-call%2Falpha")
    _plots_drawn(page, 3)
    # The scoring form of a page drawn by navigation saves like a freshly loaded one.
    before = len(served.scores())
    page.locator(".wb-criterion-benefit button", has_text="2").click()
    page.locator(".wb-criterion-frugality button", has_text="5").click()
    page.locator(".wb-save").click()
    page.wait_for_selector("#wb-saved", timeout=30_000)
    assert "64 / 100" in page.inner_text("#wb-saved")  # 0.6 * 2/5 + 0.4 * 5/5
    assert len(served.scores()) == before + 1
    page.click("#wb-back")
    page.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    assert "submission" not in page.url and page.locator("#wb-title").count() == 0
    page.click('#wb-ranking a[data-wb-key="test-call/beta"]')
    page.locator("#wb-title", has_text="Projet beta").wait_for(timeout=60_000)
    # The back button redraws the previous pages in the same kernel.
    page.go_back()
    page.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    assert "submission" not in page.url
    page.go_back()
    page.locator("#wb-title", has_text="Projet alpha").wait_for(timeout=60_000)
    assert page.url.endswith("submission=test-call%2Falpha")
    assert len(documents) == 1, documents  # one page load...
    assert len(channels) == 1, channels  # ...and one kernel, still alive
    assert channels <= served.kernels()
    # The address it shows is a link of its own: opened afresh, it is that submission.
    fresh = page.context.new_page()
    fresh.goto(page.url)
    fresh.wait_for_selector(".wb-save", timeout=60_000)
    assert fresh.inner_text("#wb-title") == "Projet alpha"


@pytest.mark.kernel
def test_a_juror_switches_to_english_and_the_pages_keep_it(served: Served, page: Any) -> None:
    page.goto(served.link("alice"))
    page.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    assert page.inner_text("#wb-call-title") == "Appel de test"
    assert "Classement des dossiers" in page.inner_text("body")
    page.click("#wb-lang-en")
    page.locator("h2", has_text="Ranking of the submissions").wait_for(timeout=60_000)
    assert page.inner_text("#wb-call-title") == "Test call"
    assert "Juror: Alice Martin" in page.inner_text("#wb-juror")
    assert "lang=en" in page.url and page.locator("#wb-lang-fr").count() == 1
    page.click('#wb-ranking a[data-wb-key="test-call/alpha"]')
    page.locator("#wb-title", has_text="Projet alpha").wait_for(timeout=60_000)
    assert "lang=en" in page.url
    assert page.inner_text("#wb-call-title") == "Test call"
    assert page.inner_text("#wb-back") == "← Back to the ranking"
    answers = page.inner_text("#wb-answers")
    assert "Open data?" in answers and "Yes" in answers and "Oui" not in answers
    assert "Benefit" in page.inner_text("body") and "Your scores" in page.inner_text("body")
    # Back on the ranking through the page's own link: still English.
    page.click("#wb-back")
    page.locator("h2", has_text="Ranking of the submissions").wait_for(timeout=60_000)
    # A shared link with the language opens in it, in a kernel of its own.
    fresh = page.context.new_page()
    fresh.goto(served.link("alice", "test-call/beta") + "&lang=en")
    fresh.wait_for_selector(".wb-save", timeout=60_000)
    assert fresh.inner_text("#wb-back") == "← Back to the ranking"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# What `workbench serve` may print besides errors (see README, `workbench serve`).
QUIET_LOG = ("serving the jury dashboards of test-call on",)


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("stop", "wait"),
    [
        (signal.SIGTERM, 0.0),
        (signal.SIGINT, 0.0),
        # While the preheated pool refills the kernel the page took.
        (signal.SIGINT, POOL_FILL_DELAY_S + 0.5),
    ],
    ids=["sigterm", "sigint", "sigint-during-refill"],
)
def test_the_server_is_quiet_and_stops_cleanly(served: Served, stop: int, wait: float) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DB"}
    env["WORKBENCH_HOME"] = str(served.root)
    exe = Path(sys.executable).parent / "workbench"
    command = [exe, "serve", "test-call", "--port", str(port), "--pool-size", "1"]
    server = subprocess.Popen(
        command, env=env, cwd=served.root.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _until(lambda: _listening(port), 90, "workbench serve did not start listening")
        status, html = _get(f"http://127.0.0.1:{port}/?token={served.tokens['alice']}")
        assert status == 200 and "wb-ranking" in html  # a page was served, kernels ran
        time.sleep(wait)
        server.send_signal(stop)
        out, err = server.communicate(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    log = (out + err).decode("utf-8", "replace")
    assert server.returncode == 0, log
    assert "Traceback" not in log
    noise = [line for line in log.splitlines() if line and not line.startswith(QUIET_LOG)]
    assert noise == [], log


@pytest.fixture
def limited(served: Served) -> Iterator[Served]:
    """The same workspace served with small limits: 3 kernels, closed pages culled in 20 s.

    Not less: on a loaded machine a browser may take several seconds to connect to the
    kernel of a page it has drawn, and a kernel with no connection yet counts as closed.
    """
    options = ("--pool-size", "1", "--max-kernels", "3", "--closed-timeout", "20")
    with _serving(served.root, served.tokens, *options) as running:
        yield running


@pytest.mark.kernel
def test_closed_pages_free_their_kernels_and_the_cap_refuses_cleanly(
    limited: Served, browser: Any
) -> None:
    # A page taken and never connected to (a tab closed at once): its kernel goes.
    status, html = _get(limited.link("alice"))
    assert status == 200
    (abandoned,) = set(PAGE_KERNEL.findall(html))
    assert abandoned in limited.kernels()
    _until(lambda: abandoned not in limited.kernels(), 60, "a closed page kept its kernel")
    # Three kernels, the preheated one included: two open pages, and a third is refused.
    contexts = [browser.new_context() for _ in range(3)]
    try:
        tabs = [context.new_page() for context in contexts]
        for tab in tabs[:2]:
            tab.goto(limited.link("alice"))
            tab.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
        response = tabs[2].goto(limited.link("bob"))
        assert response is not None and response.status == 503
        assert response.headers.get("retry-after") == "60"
        text = tabs[2].inner_text("#wb-busy")
        assert "Trop de sessions ouvertes, réessayez dans une minute" in text
        assert tabs[2].title().startswith("Trop de sessions")
        status, body = _get(limited.link("bob"), error_body=True)
        assert status == 503 and "wb-busy" in body and "Bob" not in body
        # A juror closes a page: its kernel goes, and the next page gets one.
        (closed,) = set(PAGE_KERNEL.findall(tabs[0].content()))
        assert closed in limited.kernels()
        contexts[0].close()
        _until(lambda: closed not in limited.kernels(), 60, "a closed page kept its kernel")

        def reopened() -> bool:
            response = tabs[2].goto(limited.link("bob"))
            return response is not None and response.status == 200

        _until(reopened, 60, "no kernel for a new page after one was closed")
        tabs[2].wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
    finally:
        for context in contexts[1:]:
            context.close()


def _settled(served: Served) -> set[str]:
    """The server's kernels once the pool has stopped changing (4 s alike)."""
    seen = served.kernels()
    deadline = time.monotonic() + 90
    while True:
        time.sleep(4)
        now = served.kernels()
        if now == seen:
            return now
        assert time.monotonic() < deadline, "the kernels never settled"
        seen = now


@pytest.mark.kernel
def test_strangers_take_no_kernel(served: Served) -> None:
    forged = served.tokens["alice"][:-2] + "xx"
    before = _settled(served)
    assert before, "no preheated kernel"
    queries = ["/", "/?token=", f"/?token={forged}", "/?submission=test-call/alpha"]
    for query in queries * 5:  # twenty strangers at once
        status, html = _get(served.base + query, error_body=True)
        assert status == 403 and "wb-denied" in html
        assert "Accès refusé" in html and "Access denied" in html  # French, then English
        assert "kernelId" not in html and "test-call" not in html
    assert served.kernels() == before
    time.sleep(4)  # the pool would have refilled a taken kernel by now
    assert served.kernels() == before


@pytest.mark.kernel
def test_every_kernel_is_forked_from_the_warm_zygote(served: Served) -> None:
    import psutil

    zygote = "workbench.runner.zygote"
    server = psutil.Process(served.pid)
    (parent,) = [p for p in server.children() if zygote in " ".join(p.cmdline())]
    assert "pages.auth:preload" in " ".join(parent.cmdline())  # the dashboards preloaded
    kernels = served.kernels()
    forked = [child for child in parent.children() if child.cmdline() == parent.cmdline()]
    assert kernels and len(forked) == len(kernels)


@pytest.mark.kernel
def test_template_paths_outside_static_are_not_found(served: Served) -> None:
    for path in (
        "/voila/templates/workbench",
        "/voila/templates/workbench/",
        "/voila/templates/workbench/index.html.j2",
        "/voila/templates/workbench/conf.json",
        "/voila/templates/workbench/static",
        "/voila/templates/workbench/static/../conf.json",
        "/voila/templates/workbench/static/%2E%2E/index.html.j2",
        "/voila/templates/lab/index.html.j2",
        "/voila/templates/static/x",
        "/voila/templates/",
        "/voila/static/",
    ):
        status, body = _get(served.base + path, error_body=True)
        assert status == 404, (path, status)
        assert "Traceback" not in body and "index.html.j2" not in body, path
    status, body = _get(served.base + "/voila/templates/workbench/static/workbench.js")
    assert status == 200 and "wbPlot" in body


@pytest.mark.kernel
def test_no_page_asks_for_anything_outside_the_server(served: Served, browser: Any) -> None:
    from workbench.dashboards.kernels import busy_page

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def local_only(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", local_only)
    tab = context.new_page()
    try:
        tab.goto(served.link("alice"))
        tab.wait_for_selector("#wb-ranking tbody tr", timeout=60_000)
        _plots_drawn(tab, 1)
        # The submission whose figure points an image at a remote address, loaded afresh.
        tab.goto(served.link("alice", "test-call/xss"))
        tab.wait_for_selector(".wb-save", timeout=60_000)
        _plots_drawn(tab, 3)
        tab.goto(served.link("alice", "test-call/alpha"))
        tab.wait_for_selector(".wb-save", timeout=60_000)
        tab.goto(served.base + "/?token=nobody")
        tab.wait_for_selector("#wb-denied", timeout=60_000)
        tab.goto(served.base + "/voila/templates/workbench/static/workbench.js")
        tab.set_content(busy_page("fr"))  # the 503 page, as served past the cap
        tab.wait_for_selector("#wb-busy")
        tab.wait_for_timeout(500)
    finally:
        context.close()
    assert outside == []
