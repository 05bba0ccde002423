"""Seeded synthetic demo data, one module per use case, and the loader for real data.

Each module's docstring states its generating assumptions. Every generator is
deterministic for a given seed, and its output is always called *synthetic* where
a template shows it. Real data comes in as CSV or Parquet through `load_table`,
which checks the documented columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


class DataSchemaError(InputError):
    """A data file does not have the columns a template expects."""


def load_table(
    path: str | Path, columns: Mapping[str, str], parse_dates: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Read a CSV or Parquet file and check it has `columns` (name -> unit/description).

    A missing column raises `DataSchemaError` naming the file and the column.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataSchemaError(f"{path}: data file not found")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        else:
            raise DataSchemaError(f"{path}: expected a .csv or .parquet file")
    except (ValueError, OSError, ImportError) as exc:
        raise DataSchemaError(f"{path}: cannot read the file: {exc}") from exc
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        expected = ", ".join(f"{k} ({v})" for k, v in columns.items())
        raise DataSchemaError(
            f"{path}: missing column {', '.join(repr(m) for m in missing)}; expected: {expected}"
        )
    for name in parse_dates:
        try:
            frame[name] = pd.to_datetime(frame[name])
        except (ValueError, TypeError) as exc:
            raise DataSchemaError(f"{path}: column {name!r} does not hold dates: {exc}") from exc
    return frame
