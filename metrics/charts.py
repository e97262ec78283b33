"""Trend charts as plain SVG geometry, computed on the server (no JavaScript, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass

from metrics.display import decimals_for, measured

WIDTH, HEIGHT, PAD_X, PAD_Y = 560, 160, 44, 16
LABEL_GAP = 12  # the least vertical distance between two axis labels, so they never overlap


@dataclass(frozen=True)
class TrendChart:
    points: str  # SVG polyline points of the pilot value
    dots: list[tuple[float, float]]
    threshold_y: float | None
    baseline_y: float | None
    y_labels: list[tuple[float, str]]  # the threshold's first, then the range's ends
    x_labels: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT


def trend(snapshots: list, *, threshold: float | None, baseline: float | None) -> TrendChart | None:
    """Chart of pilot values over the snapshots (oldest first); None with fewer than two.

    The y axis spans the pilot values, the threshold and the baseline, and labels the
    threshold's value, so the gap between the pilot and the number it must reach is read
    off the axis; the range's ends are labelled where they leave room."""
    series = [(s.computed_at, s.pilot_value) for s in snapshots if s.pilot_value is not None]
    if len(series) < 2:
        return None
    values = [v for _, v in series] + [x for x in (threshold, baseline) if x is not None]
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1
    margin = (high - low) * 0.1
    low, high = low - margin, high + margin
    start, end = series[0][0].timestamp(), series[-1][0].timestamp()
    span = (end - start) or 1.0

    def x(moment) -> float:
        return round(PAD_X + (moment.timestamp() - start) / span * (WIDTH - 2 * PAD_X), 1)

    def y(value: float) -> float:
        return round(PAD_Y + (high - value) / (high - low) * (HEIGHT - 2 * PAD_Y), 1)

    dots = [(x(moment), y(value)) for moment, value in series]
    ends = (high - margin, low + margin)
    places = decimals_for(*ends, exact=() if threshold is None else (threshold,))
    y_labels = [] if threshold is None else [(y(threshold), measured(threshold, places))]
    for value in ends:
        if all(abs(y(value) - at) >= LABEL_GAP for at, _ in y_labels):
            y_labels.append((y(value), measured(value, places)))
    return TrendChart(
        points=" ".join(f"{a},{b}" for a, b in dots),
        dots=dots,
        threshold_y=None if threshold is None else y(threshold),
        baseline_y=None if baseline is None else y(baseline),
        y_labels=y_labels,
        x_labels=[
            (x(series[0][0]), f"{series[0][0]:%d %b}"),
            (x(series[-1][0]), f"{series[-1][0]:%d %b}"),
        ],
    )
