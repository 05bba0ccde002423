"""Committee reports: the ranking, the jury summary, and exports that agree with `results`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import MakeSubmission
from workbench.cli import main
from workbench.dossiers import decide
from workbench.jury import add_juror, save_score
from workbench.runner.metering import Energy, MachineInfo
from workbench.runner.records import Fingerprint, RunRecord, RunScore, new_run_id
from workbench.store import open_store
from workbench.submissions import load_submission
from workbench.workspace import Workspace

MACHINE = MachineInfo(
    method="load-estimate",
    cpu_model="cpu",
    cpu_count=2,
    ram_gb=8.0,
    architecture="x86_64",
    measured_by="t",
)
# submission -> (AI MAE, baseline MAE, energy kWh)
RESULTS = {"alpha": (8.0, 10.0, 0.002), "beta": (5.0, 10.0, 0.004), "gamma": (12.0, 10.0, 0.001)}


def _record(key: str, ai: float, base: float, kwh: float) -> RunRecord:
    gain = (base - ai) / base
    return RunRecord(
        run_id=new_run_id(),
        submission=key,
        call="test-call",
        status="succeeded",
        started_at=dt.datetime.now(dt.UTC),
        finished_at=dt.datetime.now(dt.UTC),
        duration_s=2.0,
        metrics={
            "ai.mae": ai,
            "baseline.mae": base,
            "n_predictions": 100.0,
            "gain_vs_baseline": gain,
        },
        score=RunScore(
            metric="mae",
            direction="lower",
            ai=ai,
            baseline=base,
            gain_vs_baseline=gain,
            disagrees=False,
        ),
        energy=Energy(
            measured=True,
            total_kwh=kwh,
            phases={"train": kwh * 0.75, "inference": kwh * 0.25},
            cpu_kwh=kwh,
            ram_kwh=0.0,
            co2e_g=kwh * 56.0,
            wh_per_1000_predictions=kwh * 0.25 * 1e6 / 100,
            method="load-estimate",
            machine=MACHINE,
            machine_fingerprint=MACHINE.fingerprint,
            comparable=True,
            country_iso_code="FRA",
            pue=1.0,
        ),
        fingerprint=Fingerprint(
            notebook_sha256="a" * 64,
            parameters_sha256="b" * 64,
            python="3.11",
            packages_sha256="c" * 64,
            kernel="k",
        ),
        isolation="process",
        notebook="n.ipynb",
        run_dir="r",
    )


@pytest.fixture
def committee(workspace: Workspace, make_submission: MakeSubmission) -> Workspace:
    """Three scored submissions, two jurors, decisions, a reproduction verdict."""
    call = workspace.call("test-call")
    store = open_store(workspace.db_url)
    try:
        for name, (ai, base, kwh) in RESULTS.items():
            folder = make_submission(name)
            store.register(call, load_submission(folder))
            store.add_run(_record(f"test-call/{name}", ai, base, kwh))
        reference = store.runs("test-call/beta")[0].run_id
        difference = {"metric": "ai.mae", "reference": 5.0, "value": 5.5, "delta": 0.5}
        store.add_reproduction(
            {
                "submission": "test-call/beta",
                "reference_run_id": reference,
                "run_ids": ["x"],
                "verdict": "diverged",
                "differences": [{**difference, "allowed": 0.0, "reason": "", "run_id": "x"}],
            }
        )
    finally:
        store.close()
    _, ann = add_juror(workspace, "test-call", "Ann")
    _, bob = add_juror(workspace, "test-call", "Bob")
    store = open_store(workspace.db_url)
    try:
        # alpha: Ann 5/5, Bob 1/1 -> disagreement on both criteria; beta: both 3/3; gamma: unscored
        save_score(store, call, ann, "test-call/alpha", {"benefit": 4, "frugality": 4})
        save_score(
            store, call, ann, "test-call/alpha", {"benefit": 5, "frugality": 5}
        )  # replaces hers
        save_score(store, call, bob, "test-call/alpha", {"benefit": 1, "frugality": 1})
        save_score(store, call, ann, "test-call/beta", {"benefit": 3, "frugality": 3})
        save_score(store, call, bob, "test-call/beta", {"benefit": 3, "frugality": 3})
    finally:
        store.close()
    decide(workspace, "test-call/alpha", "in_review", actor="Lou")
    decide(workspace, "test-call/alpha", "accepted", actor="Lou", reason="Clear gain.")
    return workspace


def _results_json(workspace: Workspace) -> dict[str, dict]:
    out = CliRunner().invoke(
        main, ["-w", str(workspace.root), "results", "test-call", "--format", "json"]
    )
    return {row["submission"]: row for row in json.loads(out.stdout)}


def test_ranking_jury_then_gain_then_energy_and_jury_summary(committee: Workspace) -> None:
    from workbench.reports import report_data

    store = open_store(committee.db_url)
    try:
        data = report_data(store, committee.call("test-call"), "en")
    finally:
        store.close()
    # alpha (5+1)/2 -> weighted 50 on a 0..5 scale -> (100+20)/2 = 60; beta 60; tie broken by gain:
    # beta's gain 0.5 beats alpha's 0.2; gamma unscored comes last.
    assert [r["submission"] for r in data.ranking] == [
        "test-call/beta",
        "test-call/alpha",
        "test-call/gamma",
    ]
    assert [r["rank"] for r in data.ranking] == [1, 2, 3]
    alpha = next(r for r in data.ranking if r["submission"] == "test-call/alpha")
    assert alpha["jurors"] == 2 and alpha["jury_score"] == pytest.approx(60.0)
    assert alpha["state"] == "accepted"
    benefit = next(
        r for r in data.jury if r["submission"] == "test-call/alpha" and r["criterion"] == "benefit"
    )
    assert (benefit["mean"], benefit["median"], benefit["spread"]) == (3.0, 3.0, 4.0)
    assert benefit["disagreement"] is True  # spread 4 > the call's default 2
    beta = [r for r in data.jury if r["submission"] == "test-call/beta"]
    assert {r["disagreement"] for r in beta} == {False}
    assert [(a["from"], a["to"]) for a in data.audit] == [
        ("submitted", "in_review"),
        ("in_review", "accepted"),
    ]


def test_xlsx_cell_by_cell_against_the_results(committee: Workspace, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = tmp_path / "report.xlsx"
    result = CliRunner().invoke(
        main, ["-w", str(committee.root), "report", "test-call", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    book = load_workbook(out)
    assert book.sheetnames == [
        "Classement",
        "Métriques",
        "Énergie",
        "Reproductibilité",
        "Jury",
        "États",
        "Journal",
        "Affectations",
        "Synthèses",
        "Historique des synthèses",
        "Notes et messages",
    ]
    sheet = book["Classement"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    col = {name: header.index(name) for name in header}
    expected = _results_json(committee)
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 3
    for row in rows:
        source = expected[row[col["Dossier"]]]
        assert row[col["IA"]] == source["score"]["ai"]
        assert row[col["Sans IA"]] == source["score"]["baseline"]
        assert row[col["Gain vs sans IA"]] == source["score"]["gain_vs_baseline"]
        # Figures stay numbers, scaled to the column's one unit, which the header names:
        # 1, 2 and 4 Wh; 2.5, 5 and 10 Wh per 1,000 predictions; 56 to 224 mg of CO2e.
        energy = source["energy"]
        assert row[col["Énergie (Wh)"]] == pytest.approx(energy["total_kwh"] * 1e3)
        assert row[col["Émissions (mg CO2e)"]] == pytest.approx(energy["co2e_g"] * 1e3)
        per_1000 = row[col["Énergie / 1 000 prédictions (Wh)"]]
        assert per_1000 == pytest.approx(energy["wh_per_1000_predictions"])
        assert row[col["Exécution"]] == source["run_id"]
    gain_cell = sheet.cell(row=2, column=col["Gain vs sans IA"] + 1)
    assert gain_cell.number_format == "0.0%"
    energy_cell = sheet.cell(row=2, column=col["Énergie (Wh)"] + 1)
    assert energy_cell.number_format == '0.00" Wh"'
    carbon_cell = sheet.cell(row=2, column=col["Émissions (mg CO2e)"] + 1)
    assert carbon_cell.number_format == '0" mg CO2e"'  # 112 mg: three significant digits
    phases = [c.value for c in book["Énergie"][1]]
    assert "Énergie (Wh)" in phases  # the phases share the totals' unit
    metrics = {(r[0], r[2]): r[3] for r in book["Métriques"].iter_rows(min_row=2, values_only=True)}
    for key, source in expected.items():
        for name, value in source["metrics"].items():
            assert metrics[(key, name)] == value
    reproduction = list(book["Reproductibilité"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1]) for r in reproduction] == [("test-call/beta", "divergent")]  # in French


def test_html_is_one_printable_file_with_sections_and_chart(
    committee: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    args = ["-w", str(committee.root), "report", "test-call", "--out", str(out), "--lang", "en"]
    assert CliRunner().invoke(main, args).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "<script src=" not in text  # self-contained: plotly.js is inline
    assert "id='ranking'" in text and 'id="pareto"' in text and "Plotly.newPlot" in text
    for name in RESULTS:
        assert f"<section class='submission' id='test-call/{name}'>" in text
    assert "@media print" in text and "Report to the funding committee" in text
    assert "Clear gain." in text  # the audit log's reason


def test_csv_agrees_with_the_results(committee: Workspace, tmp_path: Path) -> None:
    import csv

    out = tmp_path / "report.csv"
    args = ["-w", str(committee.root), "report", "test-call", "--out", str(out), "--lang", "en"]
    assert CliRunner().invoke(main, args).exit_code == 0
    expected = _results_json(committee)
    with out.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            source = expected[row["Submission"]]
            assert float(row["Gain vs no AI"]) == source["score"]["gain_vs_baseline"]
            # The CSV keeps the base units, as the JSON does, and names them.
            assert float(row["Energy (kWh)"]) == source["energy"]["total_kwh"]
            assert float(row["Emissions (g CO2e)"]) == source["energy"]["co2e_g"]


def test_bad_report_requests(committee: Workspace, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["-w", str(committee.root), "report", "test-call", "--out", str(tmp_path / "r.pdf")]
    )
    assert result.exit_code == 2 and ".xlsx, .html, .csv" in result.stderr
    assert not (tmp_path / "r.pdf").exists()


def test_the_report_shows_intervals_overlaps_unknowns_and_untagged_phases(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    import workbench.results
    from tests.test_html import _repeated
    from workbench.reports import report_data, write_html, write_xlsx

    rows = _repeated()
    monkeypatch.setattr(workbench.results, "call_results", lambda *_args: rows)
    store = open_store(workspace.db_url)
    try:
        data = report_data(store, workspace.call("test-call"), "fr")
    finally:
        store.close()
    by_key = {r["submission"]: r for r in data.ranking}
    assert by_key["test-call/a"]["overlaps"] == "b" and by_key["test-call/c"]["overlaps"] == ""
    assert by_key["test-call/u"]["notes"] == "phases non étiquetées : énergie de l'IA inconnue"
    out = tmp_path / "report.html"
    write_html(data, out)
    markup = out.read_text(encoding="utf-8")
    assert "<th>Énergie (mWh)</th>" in markup and "<th>Énergie, borne basse" not in markup
    assert "<td>4,20 mWh [3,90 ; 4,60]</td>" in markup
    assert "<td>4,30 mWh (1 exécution : pas d&#39;intervalle)</td>" in markup
    assert "<td>inconnu : aucune cellule étiquetée train ou inference</td>" in markup
    assert "id='overlaps'" in markup and "<li>test-call/a ≈ test-call/b</li>" in markup
    assert "l&#39;énergie mesurée ne les départage pas" in markup
    assert "intervalle à 95 % (loi de Student)" in markup
    write_xlsx(data, tmp_path / "report.xlsx")
    sheet = load_workbook(tmp_path / "report.xlsx")["Classement"]
    header = [c.value for c in sheet[1]]
    table = {
        r[header.index("Dossier")]: dict(zip(header, r, strict=True))
        for r in sheet.iter_rows(min_row=2, values_only=True)
    }
    a, u = table["test-call/a"], table["test-call/u"]
    assert a["Énergie (mWh)"] == pytest.approx(4.2)
    assert a["Énergie, borne basse à 95 % (mWh)"] == pytest.approx(3.9)
    assert a["Énergie, borne haute à 95 % (mWh)"] == pytest.approx(4.6)
    assert a["Exécutions"] == 3 and a["Indiscernable en énergie de"] == "b"
    per_1000 = "Énergie / 1 000 prédictions (mWh)"
    assert u[per_1000] == "inconnu : aucune cellule étiquetée train ou inference"
    assert u["Remarques"] == "phases non étiquetées : énergie de l'IA inconnue"
