"""Scoring: the workbench's own formulas, the same for every submission.

A template records its predictions and the truth of the evaluation window; the
scorer recomputes the primary metric from them for the AI and the baseline, so the
ranking never rests on numbers typed by a notebook. It also derives
`gain_vs_baseline`: the relative improvement of the AI over the baseline, positive
when the AI is better whatever the metric's direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["lower", "higher"]
AGREEMENT_REL_TOL = 1e-6


def _pairs(truth: Sequence[float], pred: Sequence[float]) -> list[tuple[float, float]]:
    pairs = [
        (float(t), float(p))
        for t, p in zip(truth, pred, strict=True)
        if t is not None and p is not None and not (math.isnan(float(t)) or math.isnan(float(p)))
    ]
    if not pairs:
        raise ValueError("no prediction with a truth to score")
    return pairs


def mae(truth: Sequence[float], pred: Sequence[float], **_: Any) -> float:
    """Mean absolute error."""
    pairs = _pairs(truth, pred)
    return sum(abs(t - p) for t, p in pairs) / len(pairs)


def rmse(truth: Sequence[float], pred: Sequence[float], **_: Any) -> float:
    """Root mean squared error."""
    pairs = _pairs(truth, pred)
    return math.sqrt(sum((t - p) ** 2 for t, p in pairs) / len(pairs))


def mape(truth: Sequence[float], pred: Sequence[float], **_: Any) -> float:
    """Mean absolute percentage error, in %, over non-zero truths."""
    pairs = [(t, p) for t, p in _pairs(truth, pred) if t != 0]
    if not pairs:
        raise ValueError("every truth is zero: MAPE is undefined")
    return 100 * sum(abs(t - p) / abs(t) for t, p in pairs) / len(pairs)


def f1(truth: Sequence[float], pred: Sequence[float], threshold: float = 0.5, **_: Any) -> float:
    """F1 of binary truth against predictions thresholded at `threshold`."""
    pairs = [(t >= 0.5, p >= threshold) for t, p in _pairs(truth, pred)]
    tp = sum(t and p for t, p in pairs)
    fp = sum(p and not t for t, p in pairs)
    fn = sum(t and not p for t, p in pairs)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def fpr_at_recall(
    truth: Sequence[float], pred: Sequence[float], recall: float = 0.9, **_: Any
) -> float:
    """False-positive rate at the highest threshold whose recall reaches `recall`."""
    pairs = [(t >= 0.5, p) for t, p in _pairs(truth, pred)]
    positives = sorted((p for t, p in pairs if t), reverse=True)
    negatives = [p for t, p in pairs if not t]
    if not positives or not negatives:
        raise ValueError("fpr_at_recall needs both positive and negative cases")
    needed = math.ceil(recall * len(positives) - 1e-9)
    threshold = positives[max(needed, 1) - 1]
    return sum(p >= threshold for p in negatives) / len(negatives)


def total(truth: Sequence[float], pred: Sequence[float], **_: Any) -> float:
    """Sum of the predictions (e.g. the energy a control policy uses); truth is unused."""
    values = [float(p) for p in pred if p is not None and not math.isnan(float(p))]
    if not values:
        raise ValueError("nothing to sum")
    return sum(values)


@dataclass(frozen=True)
class Formula:
    compute: Callable[..., float]
    direction: Direction


FORMULAS: dict[str, Formula] = {
    "mae": Formula(mae, "lower"),
    "rmse": Formula(rmse, "lower"),
    "mape": Formula(mape, "lower"),
    "peak_error_pct": Formula(mape, "lower"),
    "f1": Formula(f1, "higher"),
    "fpr_at_recall": Formula(fpr_at_recall, "lower"),
    "energy_kwh": Formula(total, "lower"),
}


def gain_vs_baseline(ai: float, baseline: float, direction: Direction) -> float:
    """Relative improvement of the AI over the baseline: positive when the AI is better."""
    if baseline == 0:
        if ai == baseline:
            return 0.0
        better = ai < baseline if direction == "lower" else ai > baseline
        return math.inf if better else -math.inf
    change = (baseline - ai) if direction == "lower" else (ai - baseline)
    return change / abs(baseline)


@dataclass(frozen=True)
class Score:
    metric: str
    direction: Direction
    ai: float
    baseline: float
    gain_vs_baseline: float
    disagrees: bool  # the notebook's own numbers differ from the recomputed ones


def score_run(metrics: dict[str, float], records: dict[str, dict[str, Any]]) -> Score | None:
    """Recompute the primary metric from the recorded predictions; None if it cannot be."""
    primary = records.get("primary_metric", {}).get("value")
    predictions = records.get("predictions", {})
    if not isinstance(primary, dict) or predictions.get("kind") != "dataframe":
        return None
    name = primary.get("name")
    formula = FORMULAS.get(str(name))
    if formula is None:
        return None
    table = predictions["value"]
    columns = table.get("columns", [])
    if not {"truth", "ai", "baseline"} <= set(columns):
        return None
    index = {c: columns.index(c) for c in ("truth", "ai", "baseline")}
    rows = table.get("data", [])
    truth = [row[index["truth"]] for row in rows]
    options = {k: v for k, v in primary.items() if k not in {"name", "direction"}}
    try:
        ai = formula.compute(truth, [row[index["ai"]] for row in rows], **options)
        base = formula.compute(truth, [row[index["baseline"]] for row in rows], **options)
    except (ValueError, TypeError):
        return None
    claimed = (metrics.get(f"ai.{name}"), metrics.get(f"baseline.{name}"))
    disagrees = any(
        c is None or not math.isclose(c, v, rel_tol=AGREEMENT_REL_TOL, abs_tol=1e-9)
        for c, v in zip(claimed, (ai, base), strict=True)
    )
    return Score(
        str(name),
        formula.direction,
        ai,
        base,
        gain_vs_baseline(ai, base, formula.direction),
        disagrees,
    )
