"""Every template: its metadata, its parameters, its demo data, and a real run with its defaults."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import ROOT, TEST_CALL, write_yaml
from workbench.notebooks import PHASES, notebook_parameters
from workbench.runner.records import RunRecord
from workbench.scoring import FORMULAS
from workbench.submissions import load_submission
from workbench.workspace import Workspace

TEMPLATES = sorted((ROOT / "templates" / "notebooks").glob("*.ipynb"))
EXPECTED = {
    "water-demand-forecast",
    "leak-detection",
    "wwtp-aeration",
    "wildfire-detection",
    "traffic-forecast",
    "building-energy",
    "runoff-flood",
}
ids = [p.stem for p in TEMPLATES]


def dataset(template: str) -> Any:
    return importlib.import_module(f"workbench.datasets.{template.replace('-', '_')}")


def test_the_seven_use_cases_have_templates() -> None:
    assert {p.stem for p in TEMPLATES} == EXPECTED


@pytest.mark.parametrize("path", TEMPLATES, ids=ids)
def test_metadata_describes_the_template(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata["workbench"]
    assert meta["template"] == path.stem
    for key in ("title", "description"):
        assert meta[key]["fr"].strip() and meta[key]["en"].strip()
    assert meta["use_case"]
    primary = meta["primary_metric"]
    assert FORMULAS[primary["name"]].direction == primary["direction"]
    assert (
        f"ai.{primary['name']}" in meta["metrics"]
        and f"baseline.{primary['name']}" in meta["metrics"]
    )
    assert "n_predictions" in meta["metrics"]
    assert meta["data_schema"]["columns"] == dataset(path.stem).COLUMNS


@pytest.mark.parametrize("path", TEMPLATES, ids=ids)
def test_every_parameter_is_seen_by_papermill_and_documented(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assigned = [n.targets[0].id for n in ast.parse(cell.source).body if isinstance(n, ast.Assign)]
    found = notebook_parameters(path)
    assert list(found) == assigned
    assert {"seed", "data_path"} <= set(found)
    assert found["data_path"].default is None
    undocumented = [name for name, p in found.items() if not p.help]
    assert undocumented == []


@pytest.mark.parametrize("path", TEMPLATES, ids=ids)
def test_cells_are_tagged_by_phase(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    phases = {t for c in nb.cells if c.cell_type == "code" for t in c.metadata.get("tags", [])}
    assert set(PHASES) <= phases


@pytest.mark.parametrize("path", TEMPLATES, ids=ids)
def test_demo_data_is_deterministic_and_says_synthetic(path: Path) -> None:
    module = dataset(path.stem)
    assert "synthetic" in (module.__doc__ or "").lower()
    first = module.generate(seed=5).to_csv(index=False).encode()
    assert first == module.generate(seed=5).to_csv(index=False).encode()
    assert first != module.generate(seed=6).to_csv(index=False).encode()
    assert set(module.COLUMNS) <= set(module.generate(seed=5).columns)


def _template_workspace(tmp_path: Path, template: str, parameters: dict[str, Any]) -> Workspace:
    from workbench.notebooks import notebook_parameters as params

    root = tmp_path / "ws"
    call = {**TEST_CALL, "templates": [template]}
    write_yaml(root / "calls" / "test-call.yaml", call)
    folder = root / "submissions" / "test-call" / "team"
    folder.mkdir(parents=True)
    source = ROOT / "templates" / "notebooks" / f"{template}.ipynb"
    (folder / "notebook.ipynb").write_bytes(source.read_bytes())
    defaults = {name: p.default for name, p in params(source).items()}
    write_yaml(
        folder / "submission.yaml",
        {
            "id": "team",
            "call": "test-call",
            "team": "T",
            "organisation": "O",
            "title": "t",
            "template": template,
            "parameters": {**defaults, **parameters},
            "answers": {"open-data": True, "hosting": "cloud"},
        },
    )
    return Workspace(root)


def _run_with_data(
    tmp_path: Path, template: str, rel: str, write: Callable[[Path], object]
) -> tuple[RunRecord, str]:
    """Run a template on a data file `write` creates at `rel`, declared with its sha256."""
    import hashlib

    from workbench.runner.execute import execute_submission

    workspace = _template_workspace(tmp_path, template, {"data_path": rel})
    folder = workspace.submissions_dir / "test-call" / "team"
    (folder / rel).parent.mkdir(parents=True)
    write(folder / rel)
    sha = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
    doc = load_submission(folder).model_dump(mode="json")
    doc["data"] = [{"path": rel, "sha256": sha}]
    write_yaml(folder / "submission.yaml", doc)
    record = execute_submission(
        folder,
        load_submission(folder),
        workspace.call("test-call"),
        workspace.runs_dir,
        isolation="process",
    )
    return record, sha


@pytest.mark.kernel
@pytest.mark.parametrize("path", TEMPLATES, ids=ids)
def test_template_runs_with_its_defaults_and_records_the_common_names(
    path: Path, tmp_path: Path
) -> None:
    from workbench.runner.execute import execute_submission

    workspace = _template_workspace(tmp_path, path.stem, {})
    folder = workspace.submissions_dir / "test-call" / "team"
    record = execute_submission(
        folder,
        load_submission(folder),
        workspace.call("test-call"),
        workspace.runs_dir,
        isolation="process",
    )
    assert record.status == "succeeded", record.message
    primary = record.records["primary_metric"]["value"]
    name = primary["name"]
    assert {f"ai.{name}", f"baseline.{name}", "n_predictions", "gain_vs_baseline"} <= set(
        record.metrics
    )
    assert record.metrics["n_predictions"] > 0
    assert record.records["predictions"]["kind"] == "dataframe"
    assert {"truth", "ai", "baseline"} <= set(record.records["predictions"]["value"]["columns"])
    assert record.score is not None and not record.score.disagrees
    assert record.score.ai == pytest.approx(record.metrics[f"ai.{name}"])
    executed = nbformat.read(record.notebook, as_version=4)
    figures = [
        o
        for c in executed.cells
        for o in c.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) >= 2
    assert {c.phase for c in record.cells} >= set(PHASES)


@pytest.mark.kernel
@pytest.mark.parametrize("path", TEMPLATES, ids=ids)
def test_a_csv_missing_a_column_fails_with_the_documented_error(path: Path, tmp_path: Path) -> None:

    module = dataset(path.stem)
    missing = list(module.COLUMNS)[-1]
    record, _ = _run_with_data(
        tmp_path,
        path.stem,
        "data/bad.csv",
        lambda target: module.generate(seed=1).drop(columns=[missing]).to_csv(target, index=False),
    )
    assert record.status == "failed"
    assert record.error is not None and record.error.ename == "DataSchemaError"
    assert f"missing column {missing!r}" in record.error.evalue


@pytest.mark.kernel
def test_a_template_run_twice_with_the_same_seed_is_reproduced(tmp_path: Path) -> None:
    from workbench.batch import run_submission
    from workbench.reproduction import reproduce

    workspace = _template_workspace(tmp_path, "water-demand-forecast", {"model": "gbr"})
    first = run_submission(workspace, "test-call/team")
    assert first.status == "succeeded", first.message
    result = reproduce(workspace, "test-call/team")
    assert result.verdict == "reproduced", result.differences
    assert result.reference_run_id == first.run_id


@pytest.mark.kernel
def test_a_template_reads_real_data_from_parquet(tmp_path: Path) -> None:

    demo = dataset("water-demand-forecast")
    record, sha = _run_with_data(
        tmp_path,
        "water-demand-forecast",
        "data/prod.parquet",
        lambda target: demo.generate(seed=3).to_parquet(target),
    )
    assert record.status == "succeeded", record.message
    assert record.fingerprint.data_sha256 == {"data/prod.parquet": sha}
    assert record.score is not None and record.metrics["n_predictions"] > 0
