"""Trend charts as plain SVG geometry, computed on the server (no JavaScript, no CDN).

A metric's chart shows its pilot figure per UTC day (from the daily rollups) over the last
CHART_DAYS days, or its comparison window when that is longer, with the ship threshold and
the framed baseline as lines and the comparison window shaded: the stretch the verdict is
judged on, against the months before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from metrics.display import decimals_for, measured

WIDTH, HEIGHT = 560, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 60, 12, 26, 40
LABEL_GAP = 12  # the least vertical distance between two axis labels, so they never overlap
X_LABEL_GAP = 70  # the same along the time axis
CHART_DAYS = 180
DOTS_UP_TO = 45  # more daily points than this read better as a line alone


@dataclass(frozen=True)
class TrendChart:
    segments: list[str]  # SVG polyline points of the daily pilot figure; a gap splits them
    dots: list[tuple[float, float]]
    threshold_y: float | None
    baseline_y: float | None
    y_labels: list[tuple[float, str]]  # the threshold's first, then the range's ends
    x_labels: list[tuple[float, str, str]]  # x, text, SVG text-anchor
    window_x: float  # where the comparison window begins
    y_title: str
    x_title: str
    days: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    right: int = WIDTH - PAD_RIGHT
    top: int = PAD_TOP
    bottom: int = HEIGHT - PAD_BOTTOM

    # Positions the template draws at (templates do no arithmetic).
    @property
    def window_width(self) -> float:
        return round(self.right - self.window_x, 1)

    @property
    def plot_height(self) -> int:
        return self.bottom - self.top

    @property
    def y_label_x(self) -> int:
        return self.left - 4

    @property
    def x_label_y(self) -> int:
        return self.bottom + 15

    @property
    def x_title_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def x_title_y(self) -> int:
        return self.height - 4

    @property
    def y_title_y(self) -> int:
        return self.top - 12


def span(window_days: int) -> int:
    """How many days a metric's chart covers."""
    return max(CHART_DAYS, window_days)


def trend(
    points: list,
    *,
    today: date,
    window_days: int,
    threshold: float | None,
    baseline: float | None,
    figure: str,
    unit: str,
) -> TrendChart | None:
    """Chart of daily pilot figures (`points`: objects with `day` and `value`, oldest first)
    over the chart's span ending `today`; None with fewer than two days of data.

    The y axis spans the figures, the threshold and the baseline, and labels the
    threshold's value, so the gap between the pilot and the number it must reach is read
    off the axis; the range's ends are labelled where they leave room."""
    series = [(p.day, p.value) for p in points if p.value is not None]
    if len(series) < 2:
        return None
    days = span(window_days)
    first = today - timedelta(days=days - 1)
    values = [v for _, v in series] + [x for x in (threshold, baseline) if x is not None]
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1
    margin = (high - low) * 0.1
    low, high = low - margin, high + margin
    plot_width = WIDTH - PAD_LEFT - PAD_RIGHT

    def x(day: date) -> float:
        return round(PAD_LEFT + (day - first).days / max(days - 1, 1) * plot_width, 1)

    def y(value: float) -> float:
        return round(PAD_TOP + (high - value) / (high - low) * (HEIGHT - PAD_TOP - PAD_BOTTOM), 1)

    dots = [(x(day), y(value)) for day, value in series]
    segments: list[list[str]] = []
    previous = None
    for (day, _), (a, b) in zip(series, dots, strict=True):
        if previous is None or (day - previous).days > 1:
            segments.append([])
        segments[-1].append(f"{a},{b}")
        previous = day
    ends = (high - margin, low + margin)
    places = decimals_for(*ends, exact=() if threshold is None else (threshold,))
    y_labels = [] if threshold is None else [(y(threshold), measured(threshold, places))]
    for value in ends:
        if all(abs(y(value) - at) >= LABEL_GAP for at, _ in y_labels):
            y_labels.append((y(value), measured(value, places)))
    window_start = today - timedelta(days=window_days - 1)
    x_labels: list[tuple[float, str, str]] = []
    # The ends anchored inwards, so their text stays inside the chart.
    for day, anchor in ((first, "start"), (today, "end"), (window_start, "middle")):
        if all(abs(x(day) - at) >= X_LABEL_GAP for at, _, _ in x_labels):
            x_labels.append(
                (x(day), f"{day:%-d %b %Y}" if day == first else f"{day:%-d %b}", anchor)
            )
    x_labels.sort()
    return TrendChart(
        segments=[" ".join(s) for s in segments],
        dots=dots if len(dots) <= DOTS_UP_TO else [],
        threshold_y=None if threshold is None else y(threshold),
        baseline_y=None if baseline is None else y(baseline),
        y_labels=y_labels,
        x_labels=x_labels,
        window_x=x(window_start),
        y_title=f"Pilot {figure} per day" + (f" ({unit})" if unit else ""),
        x_title="Day (UTC)",
        days=days,
    )
