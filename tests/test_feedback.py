"""What goes back from the jury: notes and messages, the rapporteur's synthesis, the teams'
letters, and the jury's work in the committee's report and xlsx."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests import test_queries, test_reports
from tests.conftest import TEST_CALL, MakeSubmission, write_yaml
from workbench.cli import main
from workbench.dashboards.pages.common import Context, collecting
from workbench.errors import InputError, NotFoundError
from workbench.feedback import DECISIONS, SynthesisRefused, letters, save_synthesis, synthesis_gate
from workbench.jury import Juror, add_juror, authenticate, save_score
from workbench.reports import report_data
from workbench.store import Store, open_store
from workbench.store.jury import AssignmentChange
from workbench.submissions import load_submission
from workbench.workspace import Workspace

committee = test_reports.committee  # three scored submissions, Ann and Bob, decisions
calls = test_queries.calls  # a call of 5 submissions and one of 50
CANARY = "PRIVATE-CANARY-7f3a"  # in private notes only: never in a team's letter
SCORES = {"benefit": 4, "frugality": 3}


@dataclass
class Jury:
    workspace: Workspace
    tokens: dict[str, str]


def _juror(workspace: Workspace, token: str) -> Juror:
    with open_store(workspace.db_url) as store:
        return authenticate(store, "test-call", token)


@pytest.fixture
def worked(committee: Workspace) -> Jury:
    """Cleo rapporteur of beta and gamma; Dan and Eve assigned to beta; notes and messages;
    a synthesis of gamma, and two of beta (the second current)."""
    tokens = {name: add_juror(committee, "test-call", name)[1] for name in ("Cleo", "Dan", "Eve")}
    call = committee.call("test-call")
    with open_store(committee.db_url) as store:
        ids = {name: authenticate(store, "test-call", tok).id for name, tok in tokens.items()}
        store.add_assignments(
            "test-call",
            [AssignmentChange("test-call/beta", ids[n], True) for n in ("Dan", "Eve")],
            origin="manual",
            actor="Lou",
        )
        for key in ("test-call/beta", "test-call/gamma"):
            store.set_rapporteur("test-call", key, ids["Cleo"], actor="Lou")
        save_score(
            store, call, tokens["Dan"], "test-call/alpha", SCORES,
            comment=f"{CANARY} weak baseline", message="Documentez vos données.",
        )  # fmt: skip
        save_score(
            store, call, tokens["Cleo"], "test-call/alpha", SCORES,
            comment=f"draft {CANARY}", message="First thoughts.",
        )  # fmt: skip
        save_score(
            store,
            call,
            tokens["Cleo"],
            "test-call/alpha",
            SCORES,
            comment=f"final {CANARY}",
            message="Bravo pour la sobriété.",
        )  # fmt: skip, her latest save replaces the first
        for name in ("Dan", "Eve"):
            save_score(
                store, call, tokens[name], "test-call/beta", SCORES,
                comment=CANARY, message=f"Clear notebook ({len(name)}).",
            )  # fmt: skip
        save_score(store, call, tokens["Dan"], "test-call/gamma", SCORES, comment=CANARY)
        save_synthesis(store, call, tokens["Cleo"], "test-call/gamma", "Solid.", "accepted")
        save_synthesis(store, call, tokens["Cleo"], "test-call/beta", "First.", "rejected")
        save_synthesis(
            store, call, tokens["Cleo"], "test-call/beta", "Gain net,\nbudget tenu.", "accepted"
        )
    return Jury(committee, tokens)


# ---------------------------------------------------------------- notes and messages


def test_each_save_keeps_its_private_note_and_its_message_apart(worked: Jury) -> None:
    with open_store(worked.workspace.db_url) as store:
        rows = store.scores(submission_key="test-call/beta")
    latest = rows[-1]
    assert latest.comment == CANARY and latest.message == "Clear notebook (3)."


# ---------------------------------------------------------------- the synthesis


def test_the_synthesis_is_the_rapporteurs_once_the_reviews_are_in(committee: Workspace) -> None:
    call = committee.call("test-call")
    tokens = {name: add_juror(committee, "test-call", name)[1] for name in ("Cleo", "Dan", "Eve")}
    cleo, dan, eve = (_juror(committee, tokens[n]) for n in ("Cleo", "Dan", "Eve"))
    with open_store(committee.db_url) as store:
        store.set_rapporteur("test-call", "test-call/gamma", cleo.id, actor="Lou")
        # Nobody assigned to gamma, nobody scored it: the form waits for another's review.
        with pytest.raises(SynthesisRefused, match="Dan is not the rapporteur"):
            save_synthesis(store, call, tokens["Dan"], "test-call/gamma", "Mine.", "accepted")
        save_score(store, call, tokens["Cleo"], "test-call/gamma", SCORES)  # her own: not enough
        assert not synthesis_gate(store, call, cleo, "test-call/gamma").open
        with pytest.raises(SynthesisRefused, match="no review by another juror yet") as refused:
            save_synthesis(store, call, tokens["Cleo"], "test-call/gamma", "Too early.", "accepted")
        assert refused.value.exit_code == 2
        save_score(store, call, tokens["Dan"], "test-call/gamma", SCORES)
        assert synthesis_gate(store, call, cleo, "test-call/gamma").open
        assert not synthesis_gate(store, call, dan, "test-call/gamma").open  # not his
        for text, decision, problem in (
            ("  ", "accepted", "the synthesis is empty"),
            ("Fine.", "submitted", "is not one of accepted, rejected, dismissed"),
        ):
            with pytest.raises(InputError, match=problem):
                save_synthesis(store, call, tokens["Cleo"], "test-call/gamma", text, decision)
        with pytest.raises(NotFoundError):
            save_synthesis(store, call, tokens["Cleo"], "test-call/nope", "Fine.", "accepted")
        assert store.syntheses("test-call") == []  # every refusal stored nothing
        save_synthesis(store, call, tokens["Cleo"], "test-call/gamma", "Good.", "rejected")
        save_synthesis(store, call, tokens["Cleo"], "test-call/gamma", "Better.", "accepted")
        history = store.syntheses("test-call", "test-call/gamma")
        assert [(s.text, s.proposed_decision) for s in history] == [
            ("Good.", "rejected"),
            ("Better.", "accepted"),
        ]
        # With assignments, every assigned juror's review must be in; others do not count.
        store.set_rapporteur("test-call", "test-call/beta", cleo.id, actor="Lou")
        store.add_assignments(
            "test-call",
            [AssignmentChange("test-call/beta", j.id, True) for j in (dan, eve)],
            origin="manual",
            actor="Lou",
        )
        save_score(store, call, tokens["Dan"], "test-call/beta", SCORES)
        gate = synthesis_gate(store, call, cleo, "test-call/beta")  # Ann and Bob scored it too
        assert (gate.assigned, gate.missing, gate.open) == (2, 1, False)
        with pytest.raises(SynthesisRefused, match="1 of 2 assigned review"):
            save_synthesis(store, call, tokens["Cleo"], "test-call/beta", "Early.", "accepted")
        save_score(store, call, tokens["Eve"], "test-call/beta", SCORES)
        save_synthesis(store, call, tokens["Cleo"], "test-call/beta", "Now.", "dismissed")
        # A new rapporteur takes over: the former one may no longer write.
        store.set_rapporteur("test-call", "test-call/beta", dan.id, actor="Lou")
        with pytest.raises(SynthesisRefused, match="Cleo is not the rapporteur"):
            save_synthesis(store, call, tokens["Cleo"], "test-call/beta", "Again.", "accepted")
    assert DECISIONS == ("accepted", "rejected", "dismissed")


# ---------------------------------------------------------------- letters


def _letters(workspace: Workspace, out: Path, *extra: str) -> dict[str, str]:
    args = ["-w", str(workspace.root), "feedback", "test-call", "--out", str(out), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "wrote 3 letter(s)" in result.output
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(out.glob("*.html"))}


def test_letters_carry_results_decision_and_messages_never_a_private_note(
    worked: Jury, tmp_path: Path
) -> None:
    pages = _letters(worked.workspace, tmp_path / "letters", "--lang", "en")
    assert sorted(pages) == ["alpha", "beta", "gamma"]
    for markup in pages.values():
        assert CANARY not in markup
        # Self-contained: inline style, nothing fetched, no script.
        assert "<style>" in markup and "<script" not in markup and "<link" not in markup
        assert "src=" not in markup and "http" not in markup and "@import" not in markup
    alpha = pages["alpha"]
    # An open review: each message beside its juror's name; the latest save per juror.
    assert "Cleo · " in alpha and "Bravo pour la sobriété." in alpha
    assert "Dan · " in alpha and "Documentez vos données." in alpha
    assert "First thoughts." not in alpha
    assert "<b>accepted, on " in alpha  # the decision, from the audit log
    assert "Gain vs no AI</th><td>+20.0 %" in alpha and "Measurement method</th><td>load" in alpha
    assert "Energy</th><td>2.00 Wh (1 run: no interval)" in alpha
    beta = pages["beta"]
    assert "Dan · " in beta and "Eve · " in beta and beta.count("Clear notebook (3).") == 2
    assert "No decision yet (dossier state: handed in)." in beta
    assert "diverged (ai.mae)" in beta  # the reproduction verdict
    assert "No message from the jury." in pages["gamma"]
    assert "Gain net" not in beta  # the synthesis is the committee's, not the team's


def test_a_draft_gets_no_letter(
    worked: Jury, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    with open_store(worked.workspace.db_url) as store:
        store.register(
            worked.workspace.call("test-call"),
            load_submission(make_submission("epsilon", state="draft")),
        )
    assert sorted(_letters(worked.workspace, tmp_path / "letters")) == ["alpha", "beta", "gamma"]


def test_blind_letters_name_no_juror(worked: Jury, tmp_path: Path) -> None:
    write_yaml(
        worked.workspace.root / "calls" / "test-call.yaml", {**TEST_CALL, "review": {"blind": True}}
    )
    pages = _letters(worked.workspace, tmp_path / "letters")
    for markup in pages.values():
        for name in ("Ann", "Bob", "Cleo", "Dan", "Eve"):
            assert not re.search(rf"\b{name}\b", markup), name
        assert CANARY not in markup
    assert "Juré·e 1 · " in pages["beta"] and "Juré·e 2 · " in pages["beta"]
    assert "Bravo pour la sobriété." in pages["alpha"]
    assert "Gain vs sans IA</th><td>+20,0 %" in pages["alpha"]  # French, French decimals
    assert "<b>retenu, le " in pages["alpha"]


def test_bad_feedback_requests_write_nothing(worked: Jury, tmp_path: Path) -> None:
    root = str(worked.workspace.root)
    a_file = tmp_path / "letters.html"
    a_file.write_text("x", encoding="utf-8")
    for args, problem in (
        (["feedback", "test-call", "--out", str(a_file)], "is a file"),
        (["feedback", "test-call", "--out", str(tmp_path / "o"), "--lang", "de"], "'de'"),
        (["feedback", "no-call", "--out", str(tmp_path / "o")], "no-call"),
    ):
        result = CliRunner().invoke(main, ["-w", root, *args])
        assert result.exit_code == 2, (args, result.output)
        assert problem in result.stderr
    assert not (tmp_path / "o").exists() and a_file.read_text(encoding="utf-8") == "x"


def test_letters_and_report_read_a_fixed_number_of_statements(
    calls: dict[int, Workspace],
) -> None:
    call = calls[5].call("test-call")  # the same call in both workspaces
    for read, size in (
        (lambda store: letters(store, call), len),
        (lambda store: report_data(store, call), lambda data: len(data.ranking)),
    ):
        small, small_value = test_queries._statements(calls[5], read)
        large, large_value = test_queries._statements(calls[50], read)
        assert (size(small_value), size(large_value)) == (5, 50)
        assert small == large, (small, large)


# ---------------------------------------------------------------- the committee's report


def _section(markup: str, sub_id: str) -> str:
    start = markup.index(f"<section class='submission' id='test-call/{sub_id}'>")
    return markup[start : markup.index("</section>", start)]


def test_the_report_shows_syntheses_beside_scores_and_spreads(worked: Jury, tmp_path: Path) -> None:
    with open_store(worked.workspace.db_url) as store:
        data = report_data(store, worked.workspace.call("test-call"), "fr")
    by_key = {row["submission"]: row for row in data.ranking}
    # alpha: Ann 100, Bob 20, Dan and Cleo 72 each: the jurors' totals spread over 80 points.
    assert by_key["test-call/alpha"]["spread_total"] == pytest.approx(80.0)
    assert by_key["test-call/gamma"]["spread_total"] is None  # one juror: no spread
    assert by_key["test-call/beta"]["proposed_decision"] == "accepted"  # the latest synthesis
    assert by_key["test-call/alpha"]["proposed_decision"] is None
    out = tmp_path / "report.html"
    args = ["-w", str(worked.workspace.root), "report", "test-call", "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    markup = out.read_text(encoding="utf-8")
    beta, alpha = (_section(markup, key) for key in ("beta", "alpha"))
    assert "<b>Décision proposée : retenu</b> · Rapporteur : Cleo" in beta
    assert "Gain net,\nbudget tenu." in beta and "First." not in beta
    assert "Écart entre jurés (note pondérée, max-min) : 80" in alpha
    assert "Critères en désaccord : Bénéfice, Frugalité" in alpha
    # The project, its answers with the call's words, states and statuses in French.
    assert "Titre du projet : Un projet de test" in alpha
    assert "<th>Hébergement ?</th><td>cloud</td>" in alpha and "<td>Oui</td>" in alpha
    assert "État du dossier : retenu · Statut : réussi" in alpha
    assert ">submitted<" not in markup and ">succeeded<" not in markup
    assert ">accepted<" not in markup and "<td>déposé</td>" in markup
    assert CANARY not in markup.split("<section", 1)[0]  # no private note in the ranking


def test_the_xlsx_carries_assignments_syntheses_and_messages(worked: Jury, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = tmp_path / "report.xlsx"
    args = ["-w", str(worked.workspace.root), "report", "test-call", "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    book = load_workbook(out)

    def rows(sheet: str) -> list[dict[str, object]]:
        values = list(book[sheet].iter_rows(values_only=True))
        return [dict(zip(values[0], row, strict=True)) for row in values[1:]]

    assert rows("Affectations") == [
        {"Dossier": "test-call/beta", "Jurés affectés": "Dan, Eve", "Rapporteur": "Cleo"},
        {"Dossier": "test-call/gamma", "Jurés affectés": None, "Rapporteur": "Cleo"},
    ]
    current = rows("Synthèses")
    assert [(r["Dossier"], r["Décision proposée"], r["Texte"]) for r in current] == [
        ("test-call/beta", "retenu", "Gain net,\nbudget tenu."),
        ("test-call/gamma", "retenu", "Solid."),
    ]
    history = rows("Historique des synthèses")
    assert [r["Texte"] for r in history] == ["Solid.", "First.", "Gain net,\nbudget tenu."]
    messages = rows("Notes et messages")
    assert len(messages) == 5 + 6  # every save: the committee's five, then the six above
    cleo = [r for r in messages if r["Juré·e"] == "Cleo"]
    assert [r["Message à l'équipe"] for r in cleo] == ["First thoughts.", "Bravo pour la sobriété."]
    # The committee's workbook: the jury's private notes are in it, beside the messages.
    assert [r["Note privée pour le jury"] for r in cleo] == [f"draft {CANARY}", f"final {CANARY}"]
    ranking = rows("Classement")
    beta = next(r for r in ranking if r["Dossier"] == "test-call/beta")
    assert beta["Décision proposée"] == "retenu" and beta["État du dossier"] == "déposé"


# ---------------------------------------------------------------- the pages' forms


def _drawn(workspace: Workspace, store: Store, draw: Callable[[Context], None]) -> Drawn:
    """A page piece drawn as the view draws it: its HTML outputs and its widgets."""
    outputs: list[dict[str, Any]] = []
    widgets: list[Any] = []
    with collecting(outputs, widgets):
        draw(Context(workspace, store, workspace.call("test-call"), "fr"))
    markup = "".join(o["data"].get("text/html", "") for o in outputs)
    return Drawn(markup, [w for widget in widgets for w in _flatten(widget)])


@dataclass
class Drawn:
    html: str
    widgets: list[Any]

    def find(self, css_class: str) -> Any:
        (found,) = [w for w in self.widgets if css_class in w._dom_classes]
        return found


def _flatten(widget: Any) -> list[Any]:
    return [widget, *(w for child in getattr(widget, "children", ()) for w in _flatten(child))]


def test_the_scoring_form_saves_the_note_and_the_message_apart(worked: Jury) -> None:
    from workbench.dashboards.pages.scoring import scoring_form

    workspace, token = worked.workspace, worked.tokens["Eve"]
    eve = _juror(workspace, token)
    with open_store(workspace.db_url) as store:
        form = _drawn(
            workspace, store, lambda ctx: scoring_form(ctx, eve, token, "test-call/gamma")
        )
        labels = html.unescape(" ".join(str(getattr(w, "value", "")) for w in form.widgets))
        assert "Note privée pour le jury" in labels and "jamais envoyée à l'équipe" in labels
        assert "Message à l'équipe" in labels and "lettre de retour" in labels
        for criterion, value in SCORES.items():
            form.find(f"wb-criterion-{criterion}").value = float(value)
        form.find("wb-comment").value = "Only for the jury."
        form.find("wb-message").value = "  Well measured.  "
        form.find("wb-save").click()
        assert "wb-saved" in form.find("wb-status").value
        saved = store.scores(submission_key="test-call/gamma", juror_id=eve.id)[-1]
    assert (saved.comment, saved.message) == ("Only for the jury.", "Well measured.")


def test_only_the_rapporteur_sees_the_synthesis_form_once_reviews_are_in(
    committee: Workspace,
) -> None:
    from workbench.dashboards.pages.submission import synthesis_form

    call = committee.call("test-call")
    tokens = {name: add_juror(committee, "test-call", name)[1] for name in ("Cleo", "Dan")}
    cleo, dan = (_juror(committee, tokens[n]) for n in ("Cleo", "Dan"))
    key = "test-call/gamma"
    with open_store(committee.db_url) as store:
        store.set_rapporteur("test-call", key, cleo.id, actor="Lou")

        def form(juror: Juror) -> Drawn:
            token = tokens[juror.name]
            return _drawn(committee, store, lambda ctx: synthesis_form(ctx, juror, token, key))

        assert form(dan).html == "" and form(dan).widgets == []  # not his to write
        waiting = form(cleo)
        assert "wb-synthesis-waiting" in waiting.html and waiting.widgets == []
        assert "un autre juré aura enregistré son évaluation" in waiting.html
        save_score(store, call, tokens["Dan"], key, SCORES)
        drawn = form(cleo)
        decision = drawn.find("wb-synthesis-decision")
        assert [value for _label, value in decision.options] == list(DECISIONS)
        assert [label for label, _value in decision.options] == [
            "retenu",
            "non retenu",
            "irrecevable",
        ]
        drawn.find("wb-synthesis-text").value = "Un bon dossier."
        drawn.find("wb-synthesis-save").click()  # no decision chosen: refused, nothing stored
        assert "Non enregistré" in drawn.find("wb-synthesis-status").value
        assert store.syntheses("test-call") == []
        decision.value = "accepted"
        drawn.find("wb-synthesis-save").click()
        assert "wb-synthesis-saved" in drawn.find("wb-synthesis-status").value
        (saved,) = store.syntheses("test-call", key)
        assert (saved.juror_id, saved.text, saved.proposed_decision) == (
            cleo.id,
            "Un bon dossier.",
            "accepted",
        )
        again = form(cleo)  # the form opens on the current synthesis
        assert again.find("wb-synthesis-text").value == "Un bon dossier."
