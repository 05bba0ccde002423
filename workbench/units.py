"""How energy, carbon and water are shown: one unit per column, three significant digits.

Every figure is stored in a base unit (energy in kWh, energy per 1,000 predictions in Wh,
carbon in g of CO2e, water in L). Shown, it is scaled to a readable unit (4.193e-06 kWh
reads "4.19 mWh", "4,19 mWh" in French), and a column or an axis takes one unit for all
its values, chosen from their median magnitude, so that values compare at a glance; the
unit goes in the column's header. A figure that cannot be known is shown as unknown, with
its reason when there is one: never as 0, never blank. `results --format json` keeps the
base units; nothing here changes a stored number.

Scaling is done in decimal arithmetic on the number's shortest representation, so
1.765e-05 Wh is exactly 17.65 µWh, and rounds half up to "17.7 µWh".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ENERGY = "energy"  # kWh
ENERGY_PER_1000 = "energy_per_1000"  # Wh per 1,000 predictions
CARBON = "carbon"  # g of CO2e
WATER = "water"  # L
DIGITS = 3
NARROW_NBSP = "\u202f"  # the French thousands separator

# Each dimension's units, largest first, with their size in the dimension's reference unit
# (Wh, g, L); the unit a real zero is shown in.
_LADDERS: dict[str, tuple[tuple[tuple[str, int], ...], str]] = {
    "energy": ((("kWh", 3), ("Wh", 0), ("mWh", -3), ("µWh", -6)), "Wh"),
    "carbon": ((("kg CO2e", 3), ("g CO2e", 0), ("mg CO2e", -3), ("µg CO2e", -6)), "g CO2e"),
    "water": ((("L", 0), ("mL", -3), ("µL", -6)), "L"),
}
# kind -> (dimension, power of ten of the base unit in the dimension's reference unit)
KINDS: dict[str, tuple[str, int]] = {
    ENERGY: ("energy", 3),
    ENERGY_PER_1000: ("energy", 0),
    CARBON: ("carbon", 0),
    WATER: ("water", 0),
}


@dataclass(frozen=True)
class Unit:
    """A unit a kind of figure is shown in: a value in the base unit × 10**exponent."""

    kind: str
    symbol: str
    exponent: int

    def convert(self, value: float) -> float:
        """A base-unit value in this unit, as a float (for charts and spreadsheets)."""
        return float(_decimal(value).scaleb(self.exponent))

    def number(self, value: float, lang: str) -> str:
        """The value in this unit, three significant digits, without the symbol."""
        return format_number(_decimal(value).scaleb(self.exponent), lang)

    def format(self, value: float | None, lang: str, reason: str | None = None) -> str:
        """'4,19 mWh'; an unknown value as unknown, with its reason when one is known."""
        if not _known(value):
            return unknown(lang, reason)
        assert value is not None
        if value == 0:
            return f"0 {self.symbol}"
        return f"{self.number(value, lang)} {self.symbol}"

    def header(self, label: str) -> str:
        """A column's or an axis's title with this unit: 'Énergie (mWh)'."""
        return f"{label} ({self.symbol})"


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _units(kind: str) -> list[Unit]:
    try:
        dimension, base = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind of figure {kind!r} ({', '.join(KINDS)})") from None
    ladder, _zero = _LADDERS[dimension]
    return [Unit(kind, symbol, base - power) for symbol, power in ladder]


def base_unit(kind: str) -> Unit:
    """The unit a kind of figure is stored in: kWh, Wh (per 1,000 predictions), g CO2e, L."""
    return next(u for u in _units(kind) if u.exponent == 0)


def zero_unit(kind: str) -> Unit:
    """The unit a column of zeros (or of unknowns only) is shown in: Wh, g CO2e, L."""
    zero = _LADDERS[KINDS[kind][0]][1]
    return next(u for u in _units(kind) if u.symbol == zero)


def unit_for(value: float | None, kind: str) -> Unit:
    """The readable unit of one value: the largest in which it is at least 1."""
    if not _known(value) or value == 0:
        return zero_unit(kind)
    assert value is not None
    units = _units(kind)
    magnitude = abs(_decimal(value))
    for unit in units:
        # After rounding, 999.6 µWh reads 1.00 mWh: compare the rounded value.
        if _round(magnitude.scaleb(unit.exponent)) >= 1:
            return unit
    return units[-1]


def scale(values: Iterable[float | None], kind: str) -> Unit:
    """One unit for a whole column or axis, from the median magnitude of its values.

    Zeros and unknowns do not choose the unit; a column with nothing else is in Wh, g or L.
    """
    magnitudes = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not magnitudes:
        return zero_unit(kind)
    return unit_for(statistics.median_low(magnitudes), kind)


def format_quantity(
    value: float | None,
    kind: str,
    lang: str,
    *,
    unit: Unit | None = None,
    reason: str | None = None,
) -> str:
    """A figure in a readable unit (its own, or the column's `unit`): '4,19 mWh'."""
    return (unit or unit_for(value, kind)).format(value, lang, reason)


def format_interval(interval: tuple[float, float], unit: Unit, lang: str) -> str:
    """A 95 % interval in the unit of its median, without the symbol: '[3,9 ; 4,6]'."""
    low, high = (unit.number(v, lang) if v != 0 else "0" for v in interval)
    return f"[{low} ; {high}]" if lang == "fr" else f"[{low}, {high}]"


def unknown(lang: str, reason: str | None = None) -> str:
    """'inconnu : <reason>' / 'unknown: <reason>', or the bare word without a reason."""
    from workbench.i18n import t

    return t("unknown_because", lang, reason=reason) if reason else t("unknown", lang)


def _round(value: Decimal) -> Decimal:
    """`value` rounded half up to three significant digits."""
    if value == 0:
        return value
    quantum = Decimal(1).scaleb(value.adjusted() - DIGITS + 1)
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def format_number(value: Decimal | float, lang: str) -> str:
    """Three significant digits, with the language's decimal and thousands separators."""
    number = _round(value if isinstance(value, Decimal) else _decimal(value))
    if number == 0:
        return "0"
    decimals = max(0, DIGITS - 1 - number.adjusted())
    text = f"{number:,.{decimals}f}"
    if lang == "fr":
        return text.replace(",", NARROW_NBSP).replace(".", ",")
    return text
