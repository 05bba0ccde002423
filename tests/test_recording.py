from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from workbench import recording
from workbench.recording import MIME_TYPE, RecordError, numeric_metrics, read_records


@pytest.fixture
def displayed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `record` hands to IPython's display, captured instead of shown."""
    shown: list[dict[str, Any]] = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda data, raw: shown.append(data[MIME_TYPE]))
    return shown


@pytest.mark.parametrize(
    ("value", "kind", "stored"),
    [
        (3, "number", 3),
        (2.5, "number", 2.5),
        (np.float64(0.25), "number", 0.25),
        (np.int64(7), "number", 7),
        (True, "json", True),
        ("ridge", "string", "ridge"),
        ({"name": "mae", "direction": "lower"}, "json", {"name": "mae", "direction": "lower"}),
        ([1, 2], "json", [1, 2]),
    ],
)
def test_record_encodes_values(
    displayed: list[dict[str, Any]], value: Any, kind: str, stored: Any
) -> None:
    recording.record("x", value)
    assert displayed == [{"name": "x", "kind": kind, "value": stored}]


def test_record_dataframe(displayed: list[dict[str, Any]]) -> None:
    recording.record("predictions", pd.DataFrame({"truth": [1.0, 2.0], "ai": [1.5, 2.5]}))
    (payload,) = displayed
    assert payload["kind"] == "dataframe"
    assert payload["value"]["columns"] == ["truth", "ai"]
    assert payload["value"]["data"] == [[1.0, 1.5], [2.0, 2.5]]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("x", math.nan, "non-finite"),
        ("x", math.inf, "non-finite"),
        ("x", object(), "cannot record"),
        ("x", {"a": object()}, "cannot record"),
        ("bad name!", 1, "invalid record name"),
        ("", 1, "invalid record name"),
        ("x", "y" * 3_000_000, "limit"),
    ],
)
def test_record_refuses(
    displayed: list[dict[str, Any]], name: str, value: Any, message: str
) -> None:
    with pytest.raises(RecordError, match=message):
        recording.record(name, value)
    assert displayed == []


def _notebook(*payloads: Any) -> Any:
    cell = new_code_cell("x")
    cell.outputs = [new_output("display_data", data={MIME_TYPE: p}) for p in payloads]
    cell.outputs.append(new_output("stream", name="stdout", text="noise"))
    return new_notebook(cells=[cell])


def test_read_records_last_wins_and_ignores_malformed() -> None:
    nb = _notebook(
        {"name": "ai.mae", "kind": "number", "value": 1.0},
        {"name": "ai.mae", "kind": "number", "value": 2.0},
        {"name": "label", "kind": "string", "value": "x"},
        {"name": "bad name", "kind": "number", "value": 1},
        {"name": "nokind", "value": 1},
        {"name": "evil", "kind": "code", "value": "import os"},
        "not a dict",
    )
    records = read_records(nb)
    assert records == {
        "ai.mae": {"kind": "number", "value": 2.0},
        "label": {"kind": "string", "value": "x"},
    }
    assert numeric_metrics(records) == {"ai.mae": 2.0}


def test_numeric_metrics_skip_booleans_and_text() -> None:
    records = {
        "flag": {"kind": "number", "value": True},
        "n": {"kind": "number", "value": 3},
        "s": {"kind": "string", "value": "3"},
    }
    assert numeric_metrics(records) == {"n": 3.0}
