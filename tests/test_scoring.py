"""The scorer's formulas against values computed by hand."""

from __future__ import annotations

import math

import pytest

from workbench.scoring import (
    FORMULAS,
    f1,
    fpr_at_recall,
    gain_vs_baseline,
    mae,
    mape,
    rmse,
    score_run,
    total,
)


def test_mae_rmse_mape_by_hand() -> None:
    truth, pred = [10.0, 20.0, 30.0], [12.0, 18.0, 33.0]
    assert mae(truth, pred) == pytest.approx((2 + 2 + 3) / 3)
    assert rmse(truth, pred) == pytest.approx(math.sqrt((4 + 4 + 9) / 3))
    assert mape(truth, pred) == pytest.approx(100 * (0.2 + 0.1 + 0.1) / 3)


def test_missing_values_are_skipped() -> None:
    assert mae([1.0, None, 3.0], [2.0, 5.0, math.nan]) == pytest.approx(1.0)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        mae([None], [1.0])  # type: ignore[list-item]


def test_f1_by_hand() -> None:
    # tp = 2 (idx 0, 1), fp = 1 (idx 2), fn = 1 (idx 3): F1 = 4 / (4 + 1 + 1)
    truth = [1, 1, 0, 1, 0, 0]
    pred = [1, 1, 1, 0, 0, 0]
    assert f1(truth, pred) == pytest.approx(4 / 6)
    assert f1([0, 0], [0, 0]) == 0.0
    assert f1([1, 0], [0.7, 0.2]) == 1.0  # scores are thresholded at 0.5


def test_fpr_at_recall_by_hand() -> None:
    # Positives score 0.9, 0.8, 0.4, 0.3. Recall 0.75 needs 3 of 4: threshold 0.4.
    # Negatives 0.5, 0.35, 0.1, 0.05: only 0.5 is >= 0.4, so FPR = 1/4.
    truth = [1, 1, 1, 1, 0, 0, 0, 0]
    score = [0.9, 0.8, 0.4, 0.3, 0.5, 0.35, 0.1, 0.05]
    assert fpr_at_recall(truth, score, recall=0.75) == pytest.approx(0.25)
    # Recall 1.0 needs the threshold down to 0.3: negatives 0.5 and 0.35 pass, FPR = 2/4.
    assert fpr_at_recall(truth, score, recall=1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        fpr_at_recall([1, 1], [0.1, 0.2])


def test_total_ignores_truth() -> None:
    assert total([None, None], [1.5, 2.5]) == 4.0  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("ai", "baseline", "direction", "gain"),
    [
        (80.0, 100.0, "lower", 0.2),
        (120.0, 100.0, "lower", -0.2),
        (0.9, 0.6, "higher", 0.5),
        (0.3, 0.6, "higher", -0.5),
        (5.0, 5.0, "lower", 0.0),
    ],
)
def test_gain_vs_baseline(ai: float, baseline: float, direction: str, gain: float) -> None:
    assert gain_vs_baseline(ai, baseline, direction) == pytest.approx(gain)  # type: ignore[arg-type]


def _records(ai: list[float], base: list[float], truth: list[float], name: str = "mae") -> dict:
    rows = [[f"d{i}", t, a, b] for i, (t, a, b) in enumerate(zip(truth, ai, base, strict=True))]
    return {
        "primary_metric": {
            "kind": "json",
            "value": {"name": name, "direction": FORMULAS[name].direction},
        },
        "predictions": {
            "kind": "dataframe",
            "value": {"columns": ["date", "truth", "ai", "baseline"], "data": rows},
        },
    }


def test_score_run_recomputes_and_agrees() -> None:
    records = _records(ai=[11.0, 19.0], base=[14.0, 16.0], truth=[10.0, 20.0])
    score = score_run({"ai.mae": 1.0, "baseline.mae": 4.0}, records)
    assert score is not None
    assert (score.ai, score.baseline) == (1.0, 4.0)
    assert score.gain_vs_baseline == pytest.approx(0.75)
    assert not score.disagrees


def test_score_run_flags_numbers_typed_by_the_notebook() -> None:
    records = _records(ai=[11.0, 19.0], base=[14.0, 16.0], truth=[10.0, 20.0])
    score = score_run({"ai.mae": 0.1, "baseline.mae": 4.0}, records)
    assert score is not None and score.disagrees
    assert score.ai == 1.0  # the recomputed value is the one that counts


def test_score_run_without_predictions_is_none() -> None:
    assert score_run({}, {}) is None
    records = _records([1.0], [1.0], [1.0])
    records["primary_metric"]["value"]["name"] = "unknown"
    assert score_run({}, records) is None
