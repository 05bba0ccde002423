"""Template usage statistics for funders: what a call's submissions used, gained and spent."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.store import Store


def call_usage(store: Store, call_id: str) -> dict[str, Any]:
    """Templates used, AI against baseline, the batch's energy, and how it was measured.

    "Beat the baseline" counts the latest run of each submission whose recomputed
    `gain_vs_baseline` is positive. Energy counts every run of the call, reruns included,
    since the funder paid for all of them.
    """
    from workbench.results import call_results

    rows = call_results(store, call_id)
    templates = Counter(row.template for row in rows)
    scored = [row for row in rows if row.score is not None]
    beat = [row for row in scored if (row.gain or 0.0) > 0]
    runs = store.run_energies(call_id)  # the energy columns only, not the records
    measured = [r for r in runs if r.energy_kwh is not None]
    methods = Counter(r.method for r in measured)
    hardware = methods.get("rapl", 0)
    return {
        "call": call_id,
        "submissions": len(rows),
        "templates": dict(templates.most_common()),
        "scored": len(scored),
        "ai_beats_baseline": len(beat),
        "runs": len(runs),
        "runs_measured": len(measured),
        "energy_kwh": sum(r.energy_kwh or 0.0 for r in measured),
        "co2e_g": sum(r.co2e_g or 0.0 for r in measured),
        "methods": dict(methods.most_common()),
        "hardware_counter_share": hardware / len(measured) if measured else None,
    }
