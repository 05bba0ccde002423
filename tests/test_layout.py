"""The layout holds: the runner never reaches the store; no module grows past 600 lines."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "workbench" / "runner"
# What a Dask worker, or anything that only runs notebooks, must not need.
FORBIDDEN = (
    "workbench.store",
    "workbench.workspace",
    "workbench.batch",
    "workbench.cli",
    "workbench.dashboards",
    "sqlalchemy",
)
MAX_LINES = 600


def runner_modules() -> list[Path]:
    return sorted(RUNNER.glob("*.py"))


def imported_names(path: Path) -> set[str]:
    """Every module an `import` anywhere in the file may name (module level or in functions).

    `from a import b` names both `a` and `a.b`, since `b` may be a module; relative
    imports are resolved against the runner package.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = ["workbench", "runner"]
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)


def test_the_import_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlalchemy.orm\n"
        "from workbench import store\n"
        "def f():\n    from workbench.workspace import Workspace\n"
        "class C:\n    def m(self):\n        from .. import batch\n"
    )
    found = {name for name in imported_names(sample) if forbidden(name)}
    assert found == {
        "sqlalchemy.orm",
        "workbench.store",
        "workbench.workspace",
        "workbench.workspace.Workspace",
        "workbench.batch",
    }


@pytest.mark.parametrize("path", runner_modules(), ids=lambda p: p.name)
def test_no_runner_module_imports_the_store_or_its_callers(path: Path) -> None:
    bad = sorted(name for name in imported_names(path) if forbidden(name))
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


def test_importing_the_runner_loads_neither_the_store_nor_sqlalchemy() -> None:
    modules = [f"workbench.runner.{p.stem}" for p in runner_modules() if p.stem != "__init__"]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m in {list(FORBIDDEN)!r}"
        " or m.split('.')[0] == 'sqlalchemy')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert "workbench.runner.engine" in modules  # the heaviest one is among them
    assert json.loads(done.stdout) == []


PACKAGE = ROOT / "workbench"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_under_600_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def documented_modules(text: str) -> set[str]:
    """The names in the first column of the architecture page's module table, and the
    submodules named in backticks in its rows for packages (`runner/`: `records`, ...)."""
    names: set[str] = set()
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) < 3 or not cells[1].strip().startswith("`"):
            continue
        name = cells[1].strip().strip("`")
        names.add(name.rstrip("/"))
        if name.endswith("/"):
            names.update(f"{name}{sub}" for sub in re.findall(r"`(\w+)`", cells[2]))
    return names


def package_modules() -> set[str]:
    """Top-level modules and packages, and the modules of the packages that have several."""
    found = set()
    for path in PACKAGE.iterdir():
        if path.suffix == ".py" and path.stem != "__init__":
            found.add(path.stem)
        elif (path.is_dir() and (path / "__init__.py").exists()) or path.name == "resources":
            found.add(path.name)
    for package in ("runner", "cli", "store"):
        found.update(f"{package}/{p.stem}" for p in (PACKAGE / package).glob("[!_]*.py"))
    return found


def test_the_architecture_page_names_every_module() -> None:
    documented = documented_modules((ROOT / "docs" / "architecture.md").read_text("utf-8"))
    missing = package_modules() - documented
    assert not missing, f"docs/architecture.md's module table does not name {sorted(missing)}"
    gone = {name for name in documented if name.split("/")[0] not in package_modules()}
    assert not gone, f"docs/architecture.md names modules that do not exist: {sorted(gone)}"


def test_the_table_reader_finds_rows_and_submodules() -> None:
    text = "| module | owns |\n|---|---|\n| `calls` | x |\n| `runner/` | `records` (a), `wire` |\n"
    assert documented_modules(text) == {"calls", "runner", "runner/records", "runner/wire"}
