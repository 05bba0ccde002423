"""Blind review and assignments on the jurors' pages: what a juror may see and open.

The browser tests serve two copies of one workspace, a blind call restricted to assigned
dossiers and an open one, and read the juror's pages in /usr/bin/chromium.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import test_dashboards
from tests.conftest import NOTEBOOKS, TEST_CALL, MakeSubmission, write_yaml
from tests.test_dashboards import Served, _plots_drawn, _screenshot, _serving
from workbench import assignments
from workbench.jury import WITHHELD, add_juror, authenticate, juror_view, save_score
from workbench.store import open_store
from workbench.submissions import load_submission
from workbench.workspace import Workspace

browser = test_dashboards.browser  # the same Chromium and pages as the dashboards' tests
page = test_dashboards.page
SCORE = {"benefit": 3, "frugality": 4}
TEAM = "Régie des Eaux de Bellerive (fictive)"
ORGANISATION = "Communauté d'agglomération de Bellerive (fictive)"
CONTACT = "equipe.bellerive@example.org"
# Every name a blind review must hide: the team's, the organisation's, the contact's, and
# the submission's own id (a folder name, often the team's).
HIDDEN = (TEAM, ORGANISATION, CONTACT, "bellerive-fuites", "Projet de Bellerive")
PARTNERS = {
    "id": "partners",
    "type": "text",
    "required": False,
    "text": {"fr": "Partenaires ?", "en": "Partners?"},
}
NAMING_CELL = f"print({'Rapport de ' + TEAM + ' — ' + CONTACT!r})"


def _call(blind: bool, assigned_only: bool) -> dict[str, Any]:
    return {
        **TEST_CALL,
        "questionnaire": [*TEST_CALL["questionnaire"], PARTNERS],
        "review": {"blind": blind, "assigned_only": assigned_only},
    }


# ---------------------------------------------------------------- without a browser


def test_dossier_numbers_follow_registration_and_names_are_masked(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    write_yaml(workspace.root / "calls" / "test-call.yaml", _call(True, False))
    call = workspace.call("test-call")
    answers = {"open-data": True, "hosting": "cloud", "partners": f"{TEAM.upper()} et Ville"}
    with open_store(workspace.db_url) as store:
        folders = [
            make_submission(
                sub_id, team=TEAM, organisation=ORGANISATION, contact=CONTACT, answers=answers
            )
            for sub_id in ("zeta", "alpha")  # zeta arrives first: it is Dossier 1
        ]
        for folder in folders:
            store.register(call, load_submission(folder))
        store.register(call, load_submission(folders[0]))  # registered again (a rerun)
    juror, _ = add_juror(workspace, "test-call", "Alice")
    with open_store(workspace.db_url) as store:
        view = juror_view(store, call, juror)
        assert dict(view.numbers) == {"test-call/zeta": 1, "test-call/alpha": 2}
        assert view.ref("test-call/alpha") == "test-call/2"
        assert view.key_of("test-call/2") == "test-call/alpha"
        assert view.key_of("test-call/alpha") is None  # a blind address names numbers only
        shown = view.dossier(store.submission("test-call/alpha"), "fr")
        assert (shown.title, shown.team, shown.organisation) == ("Dossier 2", WITHHELD, WITHHELD)
        assert shown.answers["partners"] == f"{WITHHELD} et Ville"
        escaped = "Communauté d&#x27;agglomération de Bellerive (fictive)"
        figure = {"data": [{"name": f"<b>{escaped}</b>", "x": [1]}], "layout": {"title": CONTACT}}
        assert view.mask("test-call/alpha", figure) == {
            "data": [{"name": f"<b>{WITHHELD}</b>", "x": [1]}],
            "layout": {"title": WITHHELD},
        }
        open_view = juror_view(store, workspace.call("test-call").model_copy(
            update={"review": call.review.model_copy(update={"blind": False})}
        ), juror)  # fmt: skip
        assert open_view.mask("test-call/alpha", CONTACT) == CONTACT
        assert open_view.dossier(store.submission("test-call/alpha"), "fr").team == TEAM


# ---------------------------------------------------------------- in a real browser


def _workspace(root: Path, blind: bool, assigned_only: bool) -> None:
    """Three handed-in dossiers in this order: s1 (ran, its outputs name the team), s2 and
    s3 (never ran); Alice assigned to s1 and s3, Bob and Carol to s3, which Alice and Bob
    have scored; Alice has also scored s2 where the call lets her."""
    import nbformat

    from workbench.batch import run_submission
    from workbench.dossiers import decide
    from workbench.runner.metering import FakeMeter, set_process_meter

    write_yaml(root / "calls" / "test-call.yaml", _call(blind, assigned_only))
    (root / "templates" / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "ok.ipynb", root / "templates" / "notebooks" / "ok.ipynb")
    answers = {"open-data": True, "hosting": "cloud", "partners": f"Avec {ORGANISATION}"}
    for sub_id in ("s1-bellerive-fuites", "s2-autre", "s3-encore"):
        folder = root / "submissions" / "test-call" / sub_id
        folder.mkdir(parents=True)
        notebook = nbformat.read(NOTEBOOKS / "dashboard_scored.ipynb", as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(NAMING_CELL))
        nbformat.write(notebook, folder / "notebook.ipynb")
        named = sub_id.startswith("s1")
        write_yaml(
            folder / "submission.yaml",
            {
                "id": sub_id,
                "call": "test-call",
                "team": TEAM if named else f"Équipe {sub_id}",
                "organisation": ORGANISATION if named else f"Organisme {sub_id}",
                "contact": CONTACT if named else "autre@example.org",
                "title": "Projet de Bellerive" if named else f"Projet {sub_id}",
                "template": "custom",
                "parameters": {"n": 40, "noise": 0.5, "evil": False},
                "answers": answers,
            },
        )
    workspace = Workspace(root)
    for sub_id in ("s1-bellerive-fuites", "s2-autre", "s3-encore"):  # handed in, in order
        decide(workspace, f"test-call/{sub_id}", "submitted", actor="team")
    set_process_meter(FakeMeter(cpu_watts=20.0, ram_watts=5.0))
    try:
        record = run_submission(workspace, "test-call/s1-bellerive-fuites")
        assert record.status == "succeeded", record.message
    finally:
        set_process_meter(None)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """The same jury, served over a blind (assigned only) call and over an open one."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        served = {}
        for name, blind in (("blind", True), ("open", False)):
            root = tmp_path_factory.mktemp(name) / "ws"
            _workspace(root, blind=blind, assigned_only=blind)
            workspace = Workspace(root)
            tokens = {n: add_juror(workspace, "test-call", n)[1] for n in ("Alice", "Bob", "Carol")}
            for juror, sub in (("Alice", "s1"), ("Alice", "s3"), ("Bob", "s3"), ("Carol", "s3")):
                key = {"s1": "s1-bellerive-fuites", "s3": "s3-encore"}[sub]
                assignments.assign_by_hand(workspace, "test-call", juror, key, "Lou")
            call = workspace.call("test-call")
            with open_store(workspace.db_url) as store:
                for juror in ("Alice", "Bob"):
                    save_score(store, call, tokens[juror], "test-call/s3-encore", SCORE)
                if not blind:
                    save_score(store, call, tokens["Alice"], "test-call/s2-autre", SCORE)
                assert authenticate(store, "test-call", tokens["Alice"]).name == "Alice"
            served[name] = stack.enter_context(_serving(root, tokens, "--pool-size", "1"))
        yield served


def _open(tab: Any, url: str, selector: str) -> tuple[str, str]:
    tab.goto(url)
    tab.wait_for_selector(selector, timeout=60_000)
    return tab.inner_text("body"), tab.content()


@pytest.mark.kernel
def test_a_blind_call_shows_jurors_no_team_organisation_or_contact(
    pair: dict[str, Served],
    page: Any,
    tmp_path: Path,
) -> None:
    blind = pair["blind"]
    text, html = _open(page, blind.link("Alice"), "#wb-ranking tbody tr")
    _plots_drawn(page, 1)
    for name in HIDDEN:
        assert name not in text and name not in html, name
    rows = page.locator("#wb-ranking tbody tr")
    # assigned_only: only her two dossiers, by number, both marked as hers.
    assert [rows.nth(i).get_attribute("data-submission") for i in range(rows.count())] == [
        "test-call/1",
        "test-call/3",
    ]
    assert "Dossier 1" in page.inner_text("#wb-ranking") and "Dossier 1" in text
    assert page.locator("#wb-ranking .wb-mine").count() == 2
    assert page.inner_text("#wb-my-progress") == "1/2"
    assert "Évaluation à l'aveugle" in page.inner_text("#wb-blind")
    _screenshot(page, "jury-blind-call-page.png", tmp_path)

    text, html = _open(page, blind.link("Alice", "test-call/1"), ".wb-save")
    _plots_drawn(page, 3)
    assert page.inner_text("#wb-title") == "Dossier 1"
    assert "Rapport de […] — […]" in text  # the team's own print, in its outputs
    assert f"Avec {WITHHELD}" in page.inner_text("#wb-answers")
    for name in HIDDEN:
        assert name not in text and name not in html, name
    # Neither the real key nor a dossier she is not assigned to opens anything.
    for ref in ("test-call/s1-bellerive-fuites", "test-call/2"):
        text, _ = _open(page, blind.link("Alice", ref), ".wb-denied")
        assert "Dossier introuvable" in text and "Bellerive" not in text


@pytest.mark.kernel
def test_an_open_call_names_the_teams_and_lists_assigned_dossiers_first(
    pair: dict[str, Served],
    page: Any,
) -> None:
    served = pair["open"]
    text, html = _open(page, served.link("Alice"), "#wb-ranking tbody tr")
    assert TEAM in text and TEAM in html  # the ranking and the chart name the team
    rows = page.locator("#wb-ranking tbody tr")
    # By gain s1 (ran) would come first, then s2 and s3 (never ran) by key; hers first.
    order = [rows.nth(i).get_attribute("data-submission") for i in range(rows.count())]
    assert order == ["test-call/s1-bellerive-fuites", "test-call/s3-encore", "test-call/s2-autre"]
    mine = [rows.nth(i).locator(".wb-mine").count() for i in range(rows.count())]
    assert mine == [1, 1, 0]
    reviews = [rows.nth(i).locator(".wb-reviews").inner_text() for i in range(rows.count())]
    assert reviews == ["0/1", "2/3", "non assigné"]
    assert page.inner_text("#wb-my-progress") == "1/2"
    assert page.locator("#wb-blind").count() == 0
    text, html = _open(page, served.link("Alice", "test-call/s1-bellerive-fuites"), ".wb-save")
    for name in (TEAM, ORGANISATION, "Projet de Bellerive"):
        assert name in text, name
    assert f"Rapport de {TEAM} — {CONTACT}" in text
    # Not assigned, but an open call lets her read s2.
    text, _ = _open(page, served.link("Alice", "test-call/s2-autre"), ".wb-save")
    assert "Projet s2-autre" in text
