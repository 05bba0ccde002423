"""Writes the error notebooks of tests/test_execute.py: `python tests/notebooks/errors/build.py`.

Each notebook fails in one way, in its third cell (index 2 of the team's notebook): a
`parameters` cell, a cell that runs, then the failing cell, then one that never runs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
PARAMETERS = "n = 1  # predictions to record\n"
NEVER = "import workbench\nworkbench.record('n_predictions', n)"

CASES: dict[str, str] = {
    "line_magic": "%notamagic",
    "cell_magic": "%%notacellmagic\nprint('never')",
    "syntax_error": "def broken(:\n    pass",
    "name_error": "print(undefined_name)",
    "empty_message": "raise RuntimeError()",
    "custom_exception": (
        "class QuotaExceeded(Exception):\n    pass\n\n\n"
        "raise QuotaExceeded('quota of 3 requests exceeded')"
    ),
    "no_cell_ids": "1 / 0",
    "system_exit": "raise SystemExit(3)",
    "kernel_dies": "import os\nos._exit(1)",
}


def build() -> None:
    for name, failing in CASES.items():
        first = new_code_cell(PARAMETERS)
        first.metadata["tags"] = ["parameters"]
        nb = new_notebook(
            cells=[
                first,
                new_code_cell("values = list(range(n))"),
                new_code_cell(failing),
                new_markdown_cell("Never reached."),
                new_code_cell(NEVER),
            ],
            metadata={
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
        )
        if name == "no_cell_ids":
            # nbformat 4.4: cells have no ids, so they are found again by their source.
            nb.nbformat_minor = 4
            for cell in nb.cells:
                del cell["id"]
        else:
            for index, cell in enumerate(nb.cells):
                cell.id = f"{name.replace('_', '-')}-{index}"
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    build()
