"""A call's whole journey through the real commands, as `make demo` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, requires_sandbox

pytestmark = pytest.mark.kernel


@requires_sandbox
def test_kit_to_report_with_two_teams(tmp_path: Path) -> None:
    # Relative to the checkout, as `make demo` passes it.
    workbench = Path(os.path.relpath(Path(sys.executable).parent / "workbench", ROOT))
    env = {**os.environ, "JOURNEY_OUT": str(tmp_path)}
    env.pop("WORKBENCH_HOME", None)
    env.pop("WORKBENCH_DB", None)
    done = subprocess.run(
        ["bash", str(ROOT / "demo" / "journey.sh"), str(workbench)],
        capture_output=True, text=True, env=env, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    funder = tmp_path / "funder"
    # Both bundles landed, each with its receipt, and ran in the funder's batch.
    for key in ("eau-clairval", "usagers-val-d-ambre"):
        assert (funder / "submissions" / "diat" / key / "submission.yaml").is_file()
        receipt = json.loads((funder / "receipts" / "diat" / f"{key}-1.json").read_text())
        assert receipt["late"] is False
    results = subprocess.run(
        [ROOT / workbench, "results", "diat", "--format", "json"],
        capture_output=True, text=True, cwd=funder, env=env, check=True,
    ).stdout  # fmt: skip
    rows = {row["submission"]: row for row in json.loads(results)}
    assert set(rows) == {"diat/eau-clairval", "diat/usagers-val-d-ambre"}
    # The committee accepted one dossier; the other is still as handed in.
    assert rows["diat/eau-clairval"]["state"] == "accepted"
    assert rows["diat/usagers-val-d-ambre"]["state"] == "submitted"
    assert {row["status"] for row in rows.values()} == {"succeeded"}
    assert rows["diat/usagers-val-d-ambre"]["template"] == "custom"
    report = (tmp_path / "diat-report.html").read_text(encoding="utf-8")
    assert "Clairval" in report and "Val d&#39;Ambre" in report
    # Each juror scored the dossier assigned to them; the teams' letters carry the jury's
    # message to them, never its private note.
    assert done.stdout.count("scored diat/") == 2
    letters = sorted((tmp_path / "letters").glob("*.html"))
    assert [p.stem for p in letters] == ["eau-clairval", "usagers-val-d-ambre"]
    for letter in letters:
        text = letter.read_text(encoding="utf-8")
        assert "documentez la source des données" in text
        assert "Note privée" not in text
