"""Figures shown in readable units: scaled, three significant digits, French or English."""

from __future__ import annotations

import pytest

from workbench.units import (
    CARBON,
    ENERGY,
    ENERGY_PER_1000,
    NARROW_NBSP,
    WATER,
    base_unit,
    format_interval,
    format_number,
    format_quantity,
    scale,
    unit_for,
    unknown,
)


@pytest.mark.parametrize(
    ("value", "kind", "fr", "en"),
    [
        (4.193e-06, ENERGY, "4,19 mWh", "4.19 mWh"),  # kWh base
        (1.765e-05, ENERGY_PER_1000, "17,7 µWh", "17.7 µWh"),  # Wh base, half up
        (0.0, ENERGY, "0 Wh", "0 Wh"),  # a real zero is a zero, in Wh
        (0.0, ENERGY_PER_1000, "0 Wh", "0 Wh"),
        (-4.193e-06, ENERGY, "-4,19 mWh", "-4.19 mWh"),
        (2.5, ENERGY, "2,50 kWh", "2.50 kWh"),
        (0.0025, ENERGY, "2,50 Wh", "2.50 Wh"),
        (12345.0, ENERGY, f"12{NARROW_NBSP}300 kWh", "12,300 kWh"),  # the largest unit
        (9.996e-07, ENERGY, "1,00 mWh", "1.00 mWh"),  # 999.6 µWh rounds up into mWh
        (3.3e-10, ENERGY, "0,330 µWh", "0.330 µWh"),  # below the smallest unit
        (0.1125, CARBON, "113 mg CO2e", "113 mg CO2e"),
        (1500.0, CARBON, "1,50 kg CO2e", "1.50 kg CO2e"),
        (0.0, CARBON, "0 g CO2e", "0 g CO2e"),
        (0.0021, WATER, "2,10 mL", "2.10 mL"),
        (4.0e-6, WATER, "4,00 µL", "4.00 µL"),
        (None, ENERGY, "inconnu", "unknown"),
        (float("nan"), CARBON, "inconnu", "unknown"),
    ],
)
def test_a_figure_reads_in_a_readable_unit(value: float, kind: str, fr: str, en: str) -> None:
    assert format_quantity(value, kind, "fr") == fr
    assert format_quantity(value, kind, "en") == en


def test_an_unknown_figure_says_why_and_is_never_zero() -> None:
    reason = "aucune cellule étiquetée train ou inference"
    assert format_quantity(None, ENERGY_PER_1000, "fr", reason=reason) == f"inconnu : {reason}"
    assert format_quantity(None, ENERGY, "en", reason="no cell tagged train or inference") == (
        "unknown: no cell tagged train or inference"
    )
    assert unknown("fr") == "inconnu" and unknown("en", "") == "unknown"


def test_a_column_shares_one_unit_chosen_from_its_median() -> None:
    column = [4.193e-06, 3.9e-06, 1.2e-04, None, 0.0]  # the zero and the unknown do not choose
    unit = scale(column, ENERGY)
    assert unit.symbol == "mWh"
    assert [unit.format(v, "fr") for v in column] == [
        "4,19 mWh",
        "3,90 mWh",
        "120 mWh",  # a larger value stays in the column's unit, so values compare
        "inconnu",
        "0 mWh",
    ]
    assert unit.header("Énergie") == "Énergie (mWh)"
    assert unit.convert(4.193e-06) == pytest.approx(4.193)
    assert scale([], CARBON).symbol == "g CO2e" and scale([None, 0.0], WATER).symbol == "L"
    assert scale([2e-3, 5e-3, 1.0], ENERGY_PER_1000).symbol == "mWh"


def test_units_of_each_kind() -> None:
    assert [base_unit(k).symbol for k in (ENERGY, ENERGY_PER_1000, CARBON, WATER)] == [
        "kWh",
        "Wh",
        "g CO2e",
        "L",
    ]
    assert unit_for(4.193e-06, ENERGY).symbol == "mWh"
    assert unit_for(4.193e-06, ENERGY_PER_1000).symbol == "µWh"
    with pytest.raises(ValueError, match="unknown kind of figure 'volume'"):
        unit_for(1.0, "volume")


def test_an_interval_reads_in_its_medians_unit() -> None:
    unit = unit_for(4.2e-06, ENERGY)
    assert format_interval((3.9e-06, 4.6e-06), unit, "fr") == "[3,90 ; 4,60]"
    assert format_interval((3.9e-06, 4.6e-06), unit, "en") == "[3.90, 4.60]"
    assert format_interval((0.0, 4.6e-06), unit, "en") == "[0, 4.60]"


def test_plain_numbers_in_each_notation() -> None:
    assert format_number(1234.5, "fr") == f"1{NARROW_NBSP}230"
    assert format_number(1234.5, "en") == "1,230"
    assert format_number(0.012345, "fr") == "0,0123"
    assert format_number(0, "en") == "0"


@pytest.mark.parametrize(
    ("ran", "metrics", "gain"),
    [
        (set(), {}, None),
        ({"train"}, {"n_predictions": 0.0}, -0.2),
        ({"inference"}, {}, 0.1),
        ({"train", "inference", "baseline"}, {"n_predictions": 5.0}, float("nan")),
    ],
)
def test_every_reason_the_meter_gives_reads_in_french(
    ran: set[str], metrics: dict[str, float], gain: float | None
) -> None:
    from workbench.i18n import reason_label
    from workbench.runner.metering import unknown_figures

    reasons = unknown_figures(ran, metrics, gain)
    assert reasons  # each case leaves something unknown
    for figure, reason in reasons.items():
        assert reason_label(reason, "fr") != reason, (figure, reason)
