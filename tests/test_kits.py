"""Kits: a workspace from the installed package, a call's kit, a team's workspace from it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from workbench.cli import main
from workbench.errors import InputError
from workbench.kits import KIT_MANIFEST, init_workspace, write_kit
from workbench.workspace import Workspace

SEVEN = {
    "building-energy",
    "leak-detection",
    "runoff-flood",
    "traffic-forecast",
    "water-demand-forecast",
    "wildfire-detection",
    "wwtp-aeration",
}


def test_init_makes_a_workspace_from_the_package(tmp_path: Path) -> None:
    folder = init_workspace(tmp_path / "ws")
    workspace = Workspace(folder)
    assert set(workspace.template_ids()) == SEVEN
    assert workspace.call_ids() == ["diat", "feder-ami-hdf"]
    assert (folder / "submissions").is_dir()
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme.index("Espace de travail") < readme.index("Workbench workspace")


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        init_workspace(tmp_path / "ws")
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["notes.txt"]


def test_kit_holds_the_call_its_templates_and_a_bilingual_readme(tmp_path: Path) -> None:
    funder = Workspace(init_workspace(tmp_path / "funder"))
    kit = write_kit(funder, "feder-ami-hdf", tmp_path / "feder-kit.zip")
    call = funder.call("feder-ami-hdf")
    accepted = {t for t in call.templates if t != "custom"}
    with zipfile.ZipFile(kit) as archive:
        names = set(archive.namelist())
        readme = archive.read("README.md").decode()
        manifest = json.loads(archive.read(KIT_MANIFEST))
    assert names == {
        KIT_MANIFEST,
        "README.md",
        "calls/feder-ami-hdf.yaml",
        *(f"templates/notebooks/{t}.ipynb" for t in accepted),
    }
    assert manifest["deadline"] == call.deadline.isoformat()
    # French first, English beside it; every question, criterion weight and the deadline.
    assert readme.index("Questionnaire") < readme.index("The jury's rubric")
    for question in call.questionnaire:
        assert readme.count(f"`{question.id}`") == 2
        for choice in question.choices:
            assert choice in readme
    for criterion in call.rubric:
        assert f"| {criterion.label.fr} | {criterion.weight:.0%} |" in readme
        assert f"| {criterion.label.en} | {criterion.weight:.0%} |" in readme
    assert readme.count(call.deadline.isoformat()) >= 2
    assert f"{call.protocol.time_limit_s:g} s" in readme
    # The run's limits as the reference machine applies them, in both languages.
    p = call.protocol
    assert f"{p.memory_limit_mb} Mo ; au plus {p.pids_limit} processus" in readme
    assert f"{p.memory_limit_mb} MB; at most {p.pids_limit} processes" in readme
    assert f"{p.disk_limit_mb} Mo écrits" in readme and f"{p.disk_limit_mb} MB written" in readme
    assert "`flow_m3h`" in readme or "`demand_m3`" in readme  # a template's data schema

    team = Workspace(init_workspace(tmp_path / "team", kit=kit))
    assert team.call_ids() == ["feder-ami-hdf"]
    assert set(team.template_ids()) == accepted
    assert (team.root / "README.md").read_text(encoding="utf-8") == readme


@pytest.mark.parametrize(
    "name",
    ["../evil.yaml", "/etc/evil.yaml", "calls/../../evil.yaml", "run.sh", "templates/x.py"],
)
def test_a_kit_with_a_foreign_entry_is_refused_and_nothing_written(
    tmp_path: Path, name: str
) -> None:
    kit = tmp_path / "kit.zip"
    with zipfile.ZipFile(kit, "w") as archive:
        archive.writestr(KIT_MANIFEST, json.dumps({"format": 1}))
        archive.writestr(name, "x")
    with pytest.raises(InputError, match="unexpected entry"):
        init_workspace(tmp_path / "team", kit=kit)
    assert not (tmp_path / "team").exists()
    assert not (tmp_path / "evil.yaml").exists()


def test_a_symlink_in_a_kit_is_refused(tmp_path: Path) -> None:
    kit = tmp_path / "kit.zip"
    with zipfile.ZipFile(kit, "w") as archive:
        archive.writestr(KIT_MANIFEST, json.dumps({"format": 1}))
        link = zipfile.ZipInfo("calls/diat.yaml")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match="unexpected entry"):
        init_workspace(tmp_path / "team", kit=kit)
    assert not (tmp_path / "team").exists()


def test_questionnaire_lists_ids_types_and_choices(tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws")
    result = CliRunner().invoke(
        main, ["--workspace", str(tmp_path / "ws"), "questionnaire", "diat", "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("- `data-open` (yes/no")
    hosting = next(line for line in lines if "`hosting`" in line)
    assert "[on-premises | sovereign-cloud | public-cloud]" in hosting


def test_the_built_wheel_brings_the_calls_and_templates(tmp_path: Path) -> None:
    """From a wheel in a fresh venv, not from this checkout: `init` then `templates`."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # The dependencies come from this environment's site-packages (a plain path entry:
    # its .pth files, the editable install among them, are not read).
    here = next(p for p in sys.path if p.endswith("site-packages"))
    (site / "dependencies.pth").write_text(here + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", str(next(wheels.glob("workbench-*.whl")))],
        check=True, capture_output=True,
    )  # fmt: skip
    where = subprocess.run(
        [python, "-c", "import workbench; print(workbench.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(site))
    cli = venv / "bin" / "workbench"
    subprocess.run([cli, "init", str(tmp_path / "ws")], check=True, capture_output=True)
    listed = subprocess.run(
        [cli, "templates", "--json"], check=True, capture_output=True, text=True,
        cwd=tmp_path / "ws",
    ).stdout  # fmt: skip
    assert {t["id"] for t in json.loads(listed)} == SEVEN
