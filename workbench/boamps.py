"""BoAmps reports, the open French format for AI energy, written by codecarbon's mapper.

The run's own measurement (energy per process tree, per phase) is put into codecarbon's
`EmissionsData`, and codecarbon's BoAmps mapper writes the report, so the structure is
exactly the one codecarbon produces.

The report's `quality` is derived, never chosen: the larger of the measuring method's
relative uncertainty (`METHOD_UNCERTAINTY`) and, when repeated runs measured one, the 95 %
interval's relative half-width, placed on BoAmps' own scale (`BOAMPS_QUALITY`).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from typing import Any

from workbench.errors import InputError
from workbench.runner.metering import METHOD_UNCERTAINTY, Energy
from workbench.runner.records import RunRecord

# BoAmps' quality scale, from its report schema (`quality`): each grade and the largest
# relative error it stands for. Past ±50 % a report still gets the lowest grade, `low`.
BOAMPS_QUALITY: tuple[tuple[str, float], ...] = (("high", 0.10), ("medium", 0.25), ("low", 0.50))


def relative_half_width(interval: tuple[float, float]) -> float:
    """An interval's half-width relative to its centre (infinite when the centre is not > 0)."""
    low, high = interval
    centre = (low + high) / 2
    return (high - low) / 2 / centre if centre > 0 else float("inf")


def energy_uncertainty(
    energy: Energy, total_kwh_ci95: tuple[float, float] | None = None
) -> float | None:
    """The energy's relative uncertainty: its method's, or the measured interval's if larger.

    Records written before `Energy.method_uncertainty` existed take their method's figure.
    """
    method = energy.method_uncertainty
    if method is None:
        method = METHOD_UNCERTAINTY.get(energy.method or "")
    measured = relative_half_width(total_kwh_ci95) if total_kwh_ci95 is not None else None
    known = [u for u in (method, measured) if u is not None]
    return max(known) if known else None


def boamps_quality(uncertainty: float | None) -> str:
    """The BoAmps grade of a relative uncertainty: the best grade whose error bound covers it."""
    if uncertainty is not None:
        for grade, bound in BOAMPS_QUALITY:
            if uncertainty <= bound:
                return grade
    return BOAMPS_QUALITY[-1][0]


def boamps_report(
    record: RunRecord,
    title: str = "",
    template: str = "",
    *,
    total_kwh_ci95: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The run as a BoAmps report (a JSON-ready dict).

    `total_kwh_ci95`: the 95 % interval of the total energy across repeated runs, when
    there were some; it lowers the report's `quality` when it is wider than the method's.
    """
    import codecarbon
    from codecarbon.input import DataSource
    from codecarbon.output_methods.boamps.mapper import map_emissions_to_boamps
    from codecarbon.output_methods.boamps.models import (
        BoAmpsAlgorithm,
        BoAmpsDataset,
        BoAmpsHeader,
        BoAmpsTask,
    )
    from codecarbon.output_methods.emissions_data import EmissionsData

    energy = record.energy
    if energy is None or not energy.measured or energy.machine is None:
        reason = energy.reason if energy else "no energy recorded"
        raise InputError(
            f"run {record.run_id}: energy was not measured ({reason}); no BoAmps report"
        )
    duration = record.duration_s or 0.0
    total = energy.total_kwh or 0.0
    mix = DataSource().get_global_energy_mix_data().get(energy.country_iso_code, {})
    emissions = EmissionsData(
        timestamp=(record.finished_at or record.started_at).strftime("%Y-%m-%dT%H:%M:%S"),
        project_name=record.call,
        run_id=record.run_id,
        experiment_id=record.submission,
        duration=duration,
        emissions=(energy.co2e_g or 0.0) / 1000,
        emissions_rate=(energy.co2e_g or 0.0) / 1000 / duration if duration else 0.0,
        cpu_power=(energy.cpu_kwh or 0.0) * 3.6e6 / duration if duration else 0.0,
        gpu_power=0.0,
        ram_power=(energy.ram_kwh or 0.0) * 3.6e6 / duration if duration else 0.0,
        cpu_energy=energy.cpu_kwh or 0.0,
        gpu_energy=0.0,
        ram_energy=energy.ram_kwh or 0.0,
        energy_consumed=total,
        water_consumed=energy.water_l or 0.0,
        country_name=str(mix.get("country_name", "")),
        country_iso_code=energy.country_iso_code,
        region="",
        cloud_provider="",
        cloud_region="",
        os=platform.platform(),
        python_version=record.fingerprint.python,
        codecarbon_version=codecarbon.__version__,
        cpu_count=energy.machine.cpu_count,
        cpu_model=energy.machine.cpu_model,
        gpu_count=0,
        gpu_model="",
        longitude=None,  # type: ignore[arg-type]  # unknown: left out of the report
        latitude=None,  # type: ignore[arg-type]
        ram_total_size=energy.machine.ram_gb,
        tracking_mode="process",
        pue=energy.pue,
    )
    n_predictions = record.metrics.get("n_predictions")
    task = BoAmpsTask(
        task_stage="training" if energy.phases.get("train", 0) > 0 else "inference",
        task_family=template or "custom",
        nb_request=n_predictions,
        algorithms=[BoAmpsAlgorithm(algorithm_name=template or "custom", framework="scikit-learn")],
        dataset=[BoAmpsDataset(data_usage="input", source="submission")],
        task_description=title or record.submission,
    )
    header = BoAmpsHeader(report_id=record.run_id, report_status="final")
    report = map_emissions_to_boamps(
        emissions,
        task=task,
        header=header,
        quality=boamps_quality(energy_uncertainty(energy, total_kwh_ci95)),
    )
    return dict(report.to_dict())


def energy_rows(record: RunRecord) -> list[dict[str, Any]]:
    """The run's energy as rows (one per phase, then the total), for CSV."""
    energy = record.energy
    base = {"run_id": record.run_id, "submission": record.submission, "call": record.call}
    if energy is None or not energy.measured:
        return [
            {**base, "phase": "total", "energy_kwh": "", "note": energy.reason if energy else ""}
        ]
    common = {
        "method": energy.method,
        "machine": energy.machine_fingerprint,
        "comparable": energy.comparable,
    }
    rows = [{**base, "phase": p, "energy_kwh": v, **common} for p, v in energy.phases.items()]
    rows.append(
        {
            **base,
            "phase": "total",
            "energy_kwh": energy.total_kwh,
            "co2e_g": energy.co2e_g,
            "wh_per_1000_predictions": energy.wh_per_1000_predictions,
            **common,
        }
    )
    return rows


def repeats_interval(runs: Sequence[Any], input_sha256: str) -> tuple[float, float] | None:
    """The 95 % interval of the total energy across the succeeded runs of one input (the
    call's repeats), for the report's quality; None with fewer than two such runs."""
    from workbench.repeats import ci95

    totals = [
        r.energy_kwh
        for r in runs
        if r.input_sha256 == input_sha256 and r.status == "succeeded" and r.energy_kwh is not None
    ]
    return ci95(totals, floor=0.0)
