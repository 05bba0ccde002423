"""The committee's HTML report printed by Chromium: it fits an A4 page in portrait.

A4 is 210 mm wide, 794 CSS px at 96 dpi. The report is opened from its file, with the
print stylesheet applied (`emulate_media`), and nothing may reach beyond that width.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import test_feedback, test_reports
from tests.conftest import MakeSubmission
from tests.test_dashboards import CHROMIUM, CHROMIUM_ARGS
from workbench.reports import RANKING_GROUPS, report_data, write_html
from workbench.store import open_store
from workbench.submissions import load_submission

committee = test_reports.committee
worked = test_feedback.worked
A4_WIDTH_PX = 794
LONG_WORD = "Syndicat_intercommunal_pour_la_gestion_des_eaux_pluviales_du_bassin_versant"

# Every element whose box reaches beyond the page, but for what a chart clips itself and
# plotly's hidden text-measuring box (`#js-plotly-tester`, parked far off the page).
OVERFLOWING = """(width) => Array.from(document.querySelectorAll('body *'))
  .filter(e => !e.closest('.js-plotly-plot svg') && !e.closest('#js-plotly-tester'))
  .filter(e => { const r = e.getBoundingClientRect();
                 return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5); })
  .map(e => `${e.tagName}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)
"""


@pytest.fixture
def printed(worked: test_feedback.Jury, make_submission: MakeSubmission, tmp_path: Path) -> Path:
    """The report of a worked call, with a dossier whose names are long unbroken words."""
    workspace = worked.workspace
    call = workspace.call("test-call")
    folder = make_submission(
        "delta", team=LONG_WORD, title=f"{LONG_WORD} {LONG_WORD}", organisation=LONG_WORD
    )
    with open_store(workspace.db_url) as store:
        store.register(call, load_submission(folder))
        store.add_run(test_reports._record("test-call/delta", 6.0, 10.0, 0.003))
        data = report_data(store, call, "fr")
    out = tmp_path / "report.html"
    write_html(data, out)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def test_the_report_prints_on_a4_in_portrait(printed: Path, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": A4_WIDTH_PX, "height": 1123})
    fetched: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(("file://", "data:")):
            request_route.continue_()
        else:
            fetched.append(url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    try:
        page.goto(printed.as_uri())
        page.wait_for_selector("#pareto .main-svg", timeout=30_000)
        page.emulate_media(media="print")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= A4_WIDTH_PX
        assert page.evaluate(OVERFLOWING, A4_WIDTH_PX) == []
        # The ranking is split into tables that each fit, every one led by rank and dossier.
        heads = page.evaluate(
            "Array.from(document.querySelectorAll('.ranking-part table'))"
            ".map(t => Array.from(t.querySelectorAll('th')).map(th => th.textContent))"
        )
        assert len(heads) == len(RANKING_GROUPS)
        assert {tuple(h[:2]) for h in heads} == {("Rang", "Dossier")}
        # Each dossier starts a page; the states and statuses are words of the report's language.
        breaks = page.evaluate(
            "Array.from(document.querySelectorAll('section.submission'))"
            ".map(s => getComputedStyle(s).breakBefore)"
        )
        assert breaks and set(breaks) == {"page"}
        body = page.inner_text("body")
        assert "réussi" in body and "succeeded" not in body and "submitted" not in body
        # The Pareto chart's points carry their dossiers' ids.
        labels = page.evaluate(
            "Array.from(document.querySelectorAll('#pareto .textpoint text'))"
            ".map(t => t.textContent)"
        )
        assert {"alpha", "beta", "gamma", "delta"} <= set(labels)
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
        assert fetched == []  # self-contained: nothing beyond the file
    finally:
        context.close()
