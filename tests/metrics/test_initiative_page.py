"""The initiative page's metrics and feeds: what it shows and what it costs in queries."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.stages import Stage
from metrics import ingest, status
from metrics.models import Cohort, DataFeed, FeedKind, Metric, MetricSnapshot, Observation, Verdict
from portfolio.models import Initiative
from tests.factories import DataFeedFactory, MetricFactory, MetricSnapshotFactory, UserFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db


def page(client, initiative) -> str:
    response = client.get(initiative.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def observe(metric, feed, n: int, *, now, start: int = 0) -> None:
    """n observations alternating pilot and baseline, one every 10 minutes back from now."""
    Observation.objects.bulk_create(
        Observation(
            metric=metric,
            feed=feed,
            cohort=Cohort.PILOT if i % 2 else Cohort.BASELINE,
            observed_at=now - timedelta(minutes=10 * (i + 1)),
            value=(90.0 if i % 2 else 80.0) + i % 5,
            ingested_at=now - timedelta(minutes=5),
        )
        for i in range(start, start + n)
    )


def recompute(metrics, times: int, *, now) -> None:
    """`times` snapshots per metric, one hour apart, the newest at `now`."""
    for hours in range(times - 1, -1, -1):
        status.recompute(metric_ids=[m.pk for m in metrics], now=now - timedelta(hours=hours))


def _queries(client, initiative) -> int:
    with CaptureQueriesContext(connection) as captured:
        page(client, initiative)
    return len(captured)


# Query counts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", [Stage.THIN_SLICE, Stage.NARROW_LAUNCH])
@pytest.mark.parametrize("who", ["manager", "viewer"])
def test_page_queries_do_not_grow_with_metrics_feeds_observations_or_snapshots(
    client, request, manager, initiative, django_assert_num_queries, stage, who
):
    advance(initiative, stage, user=manager)
    now = timezone.now()
    primary = initiative.metrics.get()
    first_feed = DataFeedFactory(initiative=initiative, last_delivery_at=now)
    observe(primary, first_feed, 10, now=now)
    recompute([primary], 2, now=now)
    client.force_login(request.getfixturevalue(who))
    page(client, initiative)  # warm per-process caches (content types, templates)
    small = _queries(client, initiative)

    metrics = [primary] + [
        MetricFactory(initiative=initiative, is_primary=False, name=f"Metric {i}") for i in range(7)
    ]
    feeds = [first_feed] + [
        DataFeedFactory(
            initiative=initiative,
            kind=FeedKind.ONE_OFF_EXTRACT if i == 0 else FeedKind.LIVE,
            owner=UserFactory(),
            is_stale=i == 1,
            last_delivery_at=now - timedelta(hours=i),
        )
        for i in range(4)
    ]
    for i, metric in enumerate(metrics):
        observe(metric, feeds[i % 5], 250, now=now, start=10 if metric == primary else 0)
    recompute(metrics, 20, now=now + timedelta(minutes=1))

    assert Observation.objects.filter(metric__initiative=initiative).count() == 2010
    assert DataFeed.objects.filter(initiative=initiative).count() == 5
    assert all(m.snapshots.count() >= 20 for m in metrics)
    with django_assert_num_queries(small):
        body = page(client, initiative)
    assert body.count('class="metric"') == 8
    assert body.count('class="feed"') == 5
    assert body.count('role="img"') >= 8


# What the page shows -----------------------------------------------------------------------------
def test_each_metric_shows_its_verdict_badge(client, viewer, initiative):
    kinds = {
        "Meeting metric": Verdict.MEETING,
        "Below metric": Verdict.BELOW,
        "Thin metric": Verdict.INSUFFICIENT_DATA,
        "Stale metric": Verdict.STALE,
    }
    for name, verdict in kinds.items():
        metric = MetricFactory(initiative=initiative, is_primary=False, name=name)
        MetricSnapshotFactory(metric=metric, verdict=verdict, latest=True)
    MetricFactory(initiative=initiative, is_primary=False, name="Never computed")
    client.force_login(viewer)

    body = page(client, initiative)

    for name, verdict in kinds.items():
        article = re.search(rf"<strong>{name}</strong>.*?</article>", body, re.S).group(0)
        label = Verdict(verdict).label
        assert f'<span class="verdict verdict-{verdict}">{label}</span>' in article
    never = re.search(r"<strong>Never computed</strong>.*?</article>", body, re.S).group(0)
    assert '<span class="verdict verdict-none">Not computed</span>' in never


def test_a_metric_shows_its_figures_and_the_summary_sentence(client, viewer, initiative, metric):
    MetricSnapshotFactory(
        metric=metric,
        pilot_value=90.25,
        pilot_count=41,
        baseline_value=80.5,
        baseline_count=39,
        summary="pilot mean 90.25 over 14 days meets 85; baseline 80.5; +12.1%, 99.2% confidence",
        latest=True,
    )
    client.force_login(viewer)
    body = page(client, initiative)
    assert "90.25 % <span" in body and "n=41" in body
    assert "80.5 % <span" in body and "n=39" in body
    assert (
        "Pilot mean 90.25 over 14 days meets 85; baseline 80.5; +12.1%, 99.2% confidence." in body
    )


def _daily(metric, feed, figures: dict[int, list[float]], *, now) -> None:
    """Pilot observations `days ago: values` (at noon UTC of each day)."""
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    Observation.objects.bulk_create(
        Observation(
            metric=metric,
            feed=feed,
            cohort=Cohort.PILOT,
            observed_at=noon - timedelta(days=days, minutes=i),
            value=value,
        )
        for days, values in figures.items()
        for i, value in enumerate(values)
    )


def test_the_trend_chart_plots_daily_figures_with_labelled_axes_and_a_table(
    client, viewer, initiative, metric
):
    """One point per day with data (from the daily rollups), over 180 days; the comparison
    window shaded; threshold and framed baseline drawn; the same figures as a table."""
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    # 150 days ago, then a gap, then the last three days; the day's mean is plotted.
    _daily(metric, feed, {150: [80.0, 82.0], 2: [84.0], 1: [86.0, 87.0], 0: [88.0]}, now=now)
    client.force_login(viewer)

    body = page(client, initiative)

    svg = re.search(r"<svg[^>]*>.*?</svg>", body, re.S).group(0)
    assert f'role="img" aria-labelledby="trend-{metric.pk}-desc"' in svg
    assert (
        f'<desc id="trend-{metric.pk}-desc">Pilot mean per day (%) of First-contact resolution '
        f"over the last 180 days, with the {metric.comparison_window_days}-day comparison "
        "window shaded, against the ship threshold and the framed baseline; the table below "
        "lists the values.</desc>"
    ) in svg
    assert svg.count('class="dot"') == 4
    assert svg.count('class="series"') == 2  # the 147 days without data split the line
    assert 'class="threshold"' in svg and 'class="baseline"' in svg
    assert 'class="window"' in svg
    assert ">Day (UTC)</text>" in svg
    assert ">Pilot mean per day (%)</text>" in svg
    table = re.search(r"<summary>Values as a table</summary>.*?</table>", body, re.S).group(0)
    figures = re.findall(
        r"<tr><td>[^<]+</td><td class=\"num\">([^<]+)</td><td class=\"num\">(\d+)", table
    )
    assert figures == [("88", "1"), ("86.5", "2"), ("84", "1"), ("81", "2")]


def test_no_chart_is_drawn_from_a_single_day(client, viewer, initiative, metric):
    feed = DataFeedFactory(initiative=initiative)
    _daily(metric, feed, {0: [80.0, 90.0, 85.0]}, now=timezone.now())
    MetricSnapshotFactory(metric=metric, latest=True)
    client.force_login(viewer)
    body = page(client, initiative)
    assert "<svg" not in body.split('id="metrics-h"')[1].split("</section>")[0]


def test_feeds_show_their_last_fresh_data_and_their_last_delivery(client, viewer, initiative):
    now = timezone.now()
    DataFeedFactory(
        initiative=initiative,
        name="Fresh feed",
        last_fresh_at=now - timedelta(hours=3),
        last_delivery_at=now - timedelta(hours=1),
    )
    DataFeedFactory(
        initiative=initiative,
        name="Quiet feed",
        is_stale=True,
        last_fresh_at=now - timedelta(days=3),
        last_delivery_at=now - timedelta(days=3),
    )
    DataFeedFactory(
        initiative=initiative,
        name="Echo feed",
        is_stale=True,
        last_delivery_at=now - timedelta(hours=2),
    )
    DataFeedFactory(initiative=initiative, name="Silent feed", owner=None)
    DataFeedFactory(
        initiative=initiative,
        name="March extract",
        kind=FeedKind.ONE_OFF_EXTRACT,
        last_delivery_at=now - timedelta(days=40),
    )
    client.force_login(viewer)

    body = page(client, initiative)

    def feed(name):
        return re.search(rf"<strong>{name}</strong>.*?</li>", body, re.S).group(0)

    assert '<span class="verdict verdict-meeting">Fresh</span>' in feed("Fresh feed")
    assert re.search(
        r"last fresh data 3\shours ago · last delivery 1\shour ago", feed("Fresh feed")
    )
    assert "expected every 24 h" in feed("Fresh feed")
    assert '<span class="verdict verdict-stale">Stale</span>' in feed("Quiet feed")
    assert re.search(r"last fresh data 3\sdays ago", feed("Quiet feed"))
    # Delivered, but nothing new from inside its window: stale, and the page says so.
    assert '<span class="verdict verdict-stale">Stale</span>' in feed("Echo feed")
    assert re.search(r"no fresh data yet · last delivery 2\shours ago", feed("Echo feed"))
    assert "no fresh data yet · no delivery yet" in feed("Silent feed")
    assert 'Owner <span class="missing">nobody named</span>' in feed("Silent feed")
    assert "Fresh<" not in feed("Silent feed")
    assert "One-off extract" in feed("March extract")
    assert "Fresh<" not in feed("March extract") and "Stale" not in feed("March extract")


def test_the_next_gate_panel_explains_missing_fresh_data(client, manager, initiative, metric):
    advance(initiative, Stage.THIN_SLICE, user=manager)
    feed = DataFeedFactory(initiative=initiative, name="Claims events")
    three_days_ago = timezone.now() - timedelta(days=3)
    with mock.patch("django.utils.timezone.now", return_value=three_days_ago):
        ingest.store(feed, [(metric.pk, Cohort.PILOT, three_days_ago - timedelta(hours=1), 90.0)])
    client.force_login(manager)

    body = page(client, initiative)

    gate = body.split('id="gate-h"')[1].split("</section>")[0]
    assert "Live feed: “Claims events”" in gate
    assert re.search(r"the last fresh data came 3\sdays ago", gate)


def test_the_page_reads_snapshots_and_never_recomputes(client, viewer, initiative, metric):
    MetricSnapshotFactory(metric=metric, latest=True)
    client.force_login(viewer)
    before = MetricSnapshot.objects.count()
    page(client, initiative)
    assert MetricSnapshot.objects.count() == before
    assert Metric.objects.get(pk=metric.pk).latest_snapshot_id is not None
    assert Initiative.objects.get(pk=initiative.pk).stage == Stage.FRAME
