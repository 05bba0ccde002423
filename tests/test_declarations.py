"""Each closed list of the package is written once; everything else imports it.

A list spelled out a second time drifts: a state added to the schema but not to the CLI,
a language added to the dashboards but not to the reports. These tests read the source
and fail when a copy of a list appears outside its one declaration.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "workbench"

# (what, a pattern matching the list spelled out, the one module that spells it out)
DECLARATIONS = [
    (
        "dossier states",
        r'"draft",\s*"submitted",\s*"in_review"',
        "workbench/vocabulary.py",
    ),
    ("languages", r'"fr",\s*"en"|"en",\s*"fr"', "workbench/vocabulary.py"),
    # The registry of level classes in workbench/runner/isolation.py is the list: no
    # module spells the names out together.
    ("isolation levels", r'"(sandbox|process|none)",\s*"(sandbox|process|none)"', None),
    ("phases", r'"data",\s*"train",\s*"inference"', "workbench/notebooks.py"),
    ("record MIME type", r"application/vnd\.workbench\.record\+json", "workbench/recording.py"),
    ("verdicts", r'"reproduced",\s*"diverged"', "workbench/reproduction.py"),
]

# Copies in modules being rewritten, each to be replaced by an import of the declaration
# above (`workbench.vocabulary.LANGUAGES`, `workbench.notebooks.ALL_PHASES`). The counts are
# exact so that removing a copy also means removing its line here.
PENDING: dict[tuple[str, str], int] = {}  # (list, module) -> copies still to fold in


def _copies(pattern: str, package: Path = PACKAGE) -> dict[str, int]:
    """How many times each module of `package` spells out the list."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        count = len(re.findall(pattern, path.read_text(encoding="utf-8")))
        if count:
            found[path.relative_to(package.parent).as_posix()] = count
    return found


@pytest.mark.parametrize(
    ("what", "pattern", "home"), DECLARATIONS, ids=[d[0] for d in DECLARATIONS]
)
def test_a_list_is_spelled_out_only_where_it_is_declared(
    what: str, pattern: str, home: str | None
) -> None:
    copies = _copies(pattern)
    expected = {file: n for (name, file), n in PENDING.items() if name == what}
    if home is not None:
        expected[home] = 1
    assert copies == expected, f"{what}: declared in {home}, spelled out again in {copies}"


def test_a_copy_in_any_module_is_found(tmp_path: Path) -> None:
    package = tmp_path / "workbench"
    (package / "dashboards").mkdir(parents=True)
    (package / "recording.py").write_text('MIME_TYPE = "application/vnd.workbench.record+json"\n')
    (package / "dashboards" / "outputs.py").write_text(
        'RECORD_MIME = "application/vnd.workbench.record+json"\n'
    )
    (package / "cli.py").write_text('LANGS = ["fr",\n         "en"]\n')
    assert _copies(DECLARATIONS[4][1], package) == {
        "workbench/dashboards/outputs.py": 1,
        "workbench/recording.py": 1,
    }
    assert _copies(DECLARATIONS[1][1], package) == {"workbench/cli.py": 1}
