"""How measured values are written on pages: one precision rule for a value and the
threshold it is compared with, so that the two read alike.

The rule: three significant digits of the larger of the numbers compared, and never fewer
decimals than a threshold was defined with (a defined number is shown as it was set, never
rounded). A value and its threshold always share one number of decimals and carry the unit.
"""

from __future__ import annotations

import math
from decimal import Decimal

SIGNIFICANT = 3
MAX_DECIMALS = 6  # the precision thresholds are stored with


def _defined_decimals(value) -> int:
    if value is None:
        return 0
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def decimals_for(*values, exact=()) -> int:
    """Decimals that give the largest of `values` and `exact` three significant digits,
    and at least as many as any number in `exact` was defined with."""
    sizes = [abs(float(v)) for v in (*values, *exact) if v is not None and float(v) != 0]
    places = 0
    if sizes:
        largest = max(sizes)
        if math.isfinite(largest):
            places = max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest)))
    places = max([places, *(_defined_decimals(e) for e in exact)])
    return min(places, MAX_DECIMALS)


def measured(value, decimals: int, unit: str = "") -> str:
    """`value` with `decimals` decimals, thousands separated, and its unit ("93.7 %")."""
    if value is None:
        return "—"
    text = f"{float(value):,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")  # never "-0.0"
    return f"{text} {unit}".rstrip() if unit else text


def compared(value, threshold, *, unit: str = "", higher_is_better: bool = True) -> dict:
    """A measured value beside its threshold, both written by the one rule, and the gap
    between them in the metric's own direction ("1.3 % worse than the threshold")."""
    places = decimals_for(value, exact=() if threshold is None else (threshold,))
    gap = ""
    if value is not None and threshold is not None:
        difference = float(value) - float(threshold)
        better = difference if higher_is_better else -difference
        # A difference of percentages is in percentage points, not a percentage of them.
        amount = measured(abs(difference), places, "percentage points" if unit == "%" else unit)
        if measured(abs(difference), places) == measured(0, places):
            gap = "at the threshold"
        else:
            gap = f"{amount} {'better' if better > 0 else 'worse'} than the threshold"
    return {
        "value": measured(value, places, unit),
        "threshold": measured(threshold, places, unit),
        "gap": gap,
        "decimals": places,
    }
