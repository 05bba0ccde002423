"""Shared fixtures: a workspace in tmp_path, with a test call and submissions made to order."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = Path(__file__).parent / "notebooks"

TEST_CALL: dict[str, Any] = {
    "id": "test-call",
    "title": {"fr": "Appel de test", "en": "Test call"},
    "funder": "Test funder",
    "programme": "Test programme",
    "deadline": "2027-01-01",
    "templates": ["ok", "custom"],
    "protocol": {"isolation": "process", "time_limit_s": 60, "memory_limit_mb": 4096},
    "required_metrics": ["n_predictions"],
    "questionnaire": [
        {
            "id": "open-data",
            "type": "yes_no",
            "text": {"fr": "Données ouvertes ?", "en": "Open data?"},
        },
        {
            "id": "hosting",
            "type": "choice",
            "choices": ["on-premises", "cloud"],
            "text": {"fr": "Hébergement ?", "en": "Hosting?"},
        },
    ],
    "rubric": [
        {"id": "benefit", "weight": 0.6, "label": {"fr": "Bénéfice", "en": "Benefit"}},
        {"id": "frugality", "weight": 0.4, "label": {"fr": "Frugalité", "en": "Frugality"}},
    ],
}


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A workspace with the test call and the `ok` template; its store is a SQLite file."""
    root = tmp_path / "ws"
    write_yaml(root / "calls" / "test-call.yaml", TEST_CALL)
    (root / "templates" / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "ok.ipynb", root / "templates" / "notebooks" / "ok.ipynb")
    return Workspace(root)


MakeSubmission = Callable[..., Path]


@pytest.fixture
def make_submission(workspace: Workspace) -> MakeSubmission:
    """Create `submissions/test-call/ID/` from one of tests/notebooks, with overrides."""

    def make(sub_id: str = "team-a", notebook: str = "ok", **overrides: Any) -> Path:
        folder = workspace.submissions_dir / "test-call" / sub_id
        folder.mkdir(parents=True)
        shutil.copy(NOTEBOOKS / f"{notebook}.ipynb", folder / "notebook.ipynb")
        doc: dict[str, Any] = {
            "id": sub_id,
            "call": "test-call",
            "team": "Équipe test",
            "organisation": "Commune de Testville (fictive)",
            "contact": "team@testville.example",
            "title": "Un projet de test",
            "template": "ok" if notebook == "ok" else "custom",
            "parameters": {"n": 4},
            "answers": {"open-data": True, "hosting": "cloud"},
        }
        doc.update(overrides)
        write_yaml(folder / "submission.yaml", doc)
        return folder

    return make
