"""How the dashboard writes a measured value beside its threshold: one precision rule, the
unit on both, the gap in the metric's own direction; and a trend axis that names the
threshold."""

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from types import SimpleNamespace

import pytest

from metrics.charts import trend
from metrics.display import compared, decimals_for, measured


@pytest.mark.parametrize(
    ("value", "threshold", "unit", "higher", "expected"),
    [
        (40.14, "45", "seconds", False, ("40.1 seconds", "45.0 seconds", "4.9 seconds better")),
        (75.7, "80", "%", True, ("75.7 %", "80.0 %", "4.3 percentage points worse")),
        (5.153, "5", "x", True, ("5.15 x", "5.00 x", "0.15 x better")),
        (1.661, "2", "days", False, ("1.66 days", "2.00 days", "0.34 days better")),
        (13, "12", "alerts", False, ("13.0 alerts", "12.0 alerts", "1.0 alerts worse")),
        (0.8712, "0.855", "", True, ("0.871", "0.855", "0.016 better")),
        (12.56, "12.55", "", False, ("12.56", "12.55", "0.01 worse")),
        (1250.4, "1000", "EUR", True, ("1,250 EUR", "1,000 EUR", "250 EUR better")),
        (95.0, "95", "%", True, ("95.0 %", "95.0 %", "at the threshold")),
    ],
)
def test_a_value_and_its_threshold_share_one_precision_and_the_unit(
    value, threshold, unit, higher, expected
):
    shown = compared(value, Decimal(threshold), unit=unit, higher_is_better=higher)
    gap = shown["gap"].removesuffix(" than the threshold")
    assert (shown["value"], shown["threshold"], gap) == expected


def test_a_threshold_is_never_rounded():
    assert decimals_for(1234.5, exact=(Decimal("0.125000"),)) == 3
    assert measured(Decimal("0.125"), decimals_for(exact=(Decimal("0.125"),))) == "0.125"


def test_a_missing_value_is_a_dash_and_has_no_gap():
    shown = compared(None, Decimal("3"), unit="h")
    assert (shown["value"], shown["threshold"], shown["gap"]) == ("—", "3.00 h", "")


def test_never_minus_zero():
    assert measured(-0.0001, 2) == "0.00"


TODAY = date(2026, 11, 20)


def days(*values):
    """Daily points ending today."""
    return [
        SimpleNamespace(day=TODAY - timedelta(days=len(values) - 1 - n), value=v)
        for n, v in enumerate(values)
    ]


def chart(points, **kwargs):
    options = {"today": TODAY, "window_days": 14, "figure": "mean", "unit": "%"}
    return trend(points, **(options | kwargs))


def test_the_trend_axis_names_the_threshold_between_its_ends():
    drawn = chart(days(40.1, 41.0, 39.5), threshold=45.0, baseline=60.0)

    assert [label for _, label in drawn.y_labels] == ["45.0", "60.0", "39.5"]
    assert drawn.y_labels[0][0] == drawn.threshold_y


def test_an_axis_end_too_close_to_the_threshold_is_left_unlabelled():
    drawn = chart(days(93.7, 93.6, 93.8), threshold=95.0, baseline=None)

    labels = [label for _, label in drawn.y_labels]
    assert labels[0] == "95.0"
    assert "95.0" not in labels[1:]  # the upper end is the threshold itself
    ys = sorted(y for y, _ in drawn.y_labels)
    assert all(b - a >= 12 for a, b in pairwise(ys))


def test_the_time_axis_spans_180_days_and_shades_the_comparison_window():
    drawn = chart(days(1.0, 2.0, 3.0), threshold=2.0, baseline=None)

    assert drawn.days == 180
    left, right = drawn.left, drawn.right
    assert drawn.dots[-1][0] == right  # today at the right edge
    # 14 days of 180: the window starts 13 day-steps before the right edge.
    assert drawn.window_x == pytest.approx(right - 13 / 179 * (right - left), abs=0.1)
    # Today's label wins over the window's start, 35 px from it.
    assert drawn.x_labels == [(left, "25 May 2026", "start"), (right, "20 Nov", "end")]
    assert (drawn.y_title, drawn.x_title) == ("Pilot mean per day (%)", "Day (UTC)")


def test_a_window_longer_than_180_days_widens_the_chart():
    assert chart(days(1.0, 2.0), threshold=None, baseline=None, window_days=365).days == 365


def test_days_without_data_split_the_line():
    points = days(1.0, 2.0, 3.0, 4.0)
    del points[1]
    assert len(chart(points, threshold=None, baseline=None).segments) == 2
