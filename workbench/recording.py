"""Recording values from inside a notebook, and reading them back from the executed copy.

A notebook calls `workbench.record(name, value)`. The value travels as a display
output under the workbench's own MIME type, so it ends up in the executed notebook
that the runner writes from the kernel's messages. The runner reads it from there:
nothing the notebook writes to disk is trusted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MIME_TYPE = "application/vnd.workbench.record+json"
MAX_RECORD_BYTES = 2_000_000  # a record is a result, not a data set
PREDICTIONS = "predictions"  # the table of predictions the workbench scores and counts
N_PREDICTIONS = "n_predictions"
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


class RecordError(ValueError):
    """A value that cannot be recorded; raised inside the notebook."""


def _encode(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"kind": "json", "value": value}
    if isinstance(value, int | float) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
        else:
            if not math.isfinite(number):
                raise RecordError(f"cannot record a non-finite number ({number})")
            as_int = isinstance(value, int) or (
                hasattr(value, "dtype") and value.dtype.kind in "iu"
            )
            return {"kind": "number", "value": int(value) if as_int else number}
    if isinstance(value, str):
        return {"kind": "string", "value": value}
    if type(value).__name__ == "DataFrame" and hasattr(value, "to_json"):
        data = json.loads(value.to_json(orient="split", date_format="iso", index=False))
        return {"kind": "dataframe", "value": data}
    if isinstance(value, dict | list | tuple):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise RecordError(f"cannot record this {type(value).__name__}: {exc}") from exc
        return {"kind": "json", "value": value}
    raise RecordError(
        f"cannot record a {type(value).__name__}: use a number, a string, a small dict or list, "
        "or a pandas DataFrame"
    )


def record(name: str, value: Any) -> None:
    """Record a result of this notebook under `name` (e.g. `ai.mae`, `n_predictions`)."""
    from IPython.display import display

    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RecordError(f"invalid record name {name!r}: letters, digits, '_', '.', '-'")
    payload = {"name": name, **_encode(value)}
    size = len(json.dumps(payload))
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"record {name!r} is {size} bytes; the limit is {MAX_RECORD_BYTES}")
    display({MIME_TYPE: payload}, raw=True)


def read_records(nb: Any) -> dict[str, dict[str, Any]]:
    """Every value recorded in an executed notebook, by name; a later record wins."""
    found: dict[str, dict[str, Any]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME_TYPE)
            if not isinstance(payload, dict):
                continue
            name, kind = payload.get("name"), payload.get("kind")
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                continue
            if kind not in {"number", "string", "json", "dataframe"} or "value" not in payload:
                continue
            if len(json.dumps(payload)) > MAX_RECORD_BYTES:
                continue
            found[name] = {"kind": kind, "value": payload["value"]}
    return found


def numeric_metrics(records: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The recorded numbers: these are a run's metrics.

    `n_predictions` is the number of rows of the recorded `predictions` table when there
    is one, whatever the notebook declared (`predictions_disagree` says if it differed).
    """
    metrics = {}
    for name, item in records.items():
        value = item["value"]
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if item["kind"] == "number" and is_number and math.isfinite(value):
            metrics[name] = float(value)
    counted = counted_predictions(records)
    if counted is not None:
        metrics[N_PREDICTIONS] = float(counted)
    return metrics


def counted_predictions(records: dict[str, dict[str, Any]]) -> int | None:
    """The rows of the recorded `predictions` table, or None when none was recorded."""
    item = records.get(PREDICTIONS, {})
    table = item.get("value") if item.get("kind") == "dataframe" else None
    rows = table.get("data") if isinstance(table, dict) else None
    return len(rows) if isinstance(rows, list) else None


def predictions_disagree(records: dict[str, dict[str, Any]]) -> bool:
    """The notebook declared an `n_predictions` that is not its `predictions` table's rows.

    A count typed by the notebook once divided the inference energy by 10**12: the
    table's own count is used instead, and the run is flagged like a disagreeing metric.
    """
    counted = counted_predictions(records)
    declared = records.get(N_PREDICTIONS, {})
    if counted is None or declared.get("kind") != "number":
        return False
    return bool(declared.get("value") != counted)
