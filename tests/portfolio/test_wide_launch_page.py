"""The initiative page of a wide launch: when its primary metric falls below the ship
threshold it shows the problem in numbers and the lever (roll back, stop), not "runs in
production"; its trend chart's axis names the threshold."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from gates.stages import Stage
from metrics.models import Direction, Metric, Verdict
from pages import purgatory
from tests.factories import (
    DataFeedFactory,
    InitiativeFactory,
    MetricSnapshotFactory,
    ObservationFactory,
)
from tests.helpers import advance

pytestmark = pytest.mark.django_db

RUNS_IN_PRODUCTION = "passed every gate and runs in production"


def wide_launch(*, user, verdict, pilot, days_below=0):
    """A wide launch whose primary metric (high-risk alerts reviewed within 24 h, in %,
    higher is better, threshold 95) has a snapshot a day for `days_below` + 1 days, the
    last saying `verdict`, and a pilot observation of `pilot` a day."""
    initiative = advance(InitiativeFactory(framed=True), Stage.WIDE_LAUNCH, user=user)
    feed = DataFeedFactory(initiative=initiative, last_fresh_at=timezone.now())
    metric = initiative.metrics.get(is_primary=True)
    Metric.objects.filter(pk=metric.pk).update(
        name="High-risk alerts reviewed within 24 h",
        unit="%",
        direction=Direction.HIGHER,
        ship_threshold=Decimal("95"),
        baseline=Decimal("72"),
    )
    for days in range(days_below, -1, -1):
        MetricSnapshotFactory(
            metric=metric,
            verdict=verdict,
            pilot_value=pilot,
            computed_at=timezone.now() - timedelta(days=days),
            summary="pilot mean 93.7 over 14 days misses 95",
            latest=days == 0,
        )
        ObservationFactory(
            metric=metric,
            feed=feed,
            value=pilot,
            observed_at=timezone.now() - timedelta(days=days, minutes=1),
        )
    return initiative


def page(client, user, initiative):
    client.force_login(user)
    response = client.get(initiative.get_absolute_url())
    assert response.status_code == 200
    return response


def test_a_wide_launch_below_threshold_shows_the_problem_and_the_lever(client, manager):
    initiative = wide_launch(user=manager, verdict=Verdict.BELOW, pilot=93.7, days_below=20)
    purgatory.sync_flags()  # in launch only since today: not yet flagged

    response = page(client, manager, initiative)

    body = response.content.decode()
    assert RUNS_IN_PRODUCTION not in body
    alert = response.context["wide_alert"]
    assert (alert["value"], alert["threshold"]) == ("93.7 %", "95.0 %")
    assert "In wide launch, below its ship threshold" in body
    assert (
        "<strong>High-risk alerts reviewed within 24 h</strong> (higher is better) is at "
        "<strong>93.7 %</strong> against a ship threshold of <strong>95.0 %</strong>: "
        "1.3 percentage points worse than the threshold." in body
    )
    # The lever, and the decision forms it leads to.
    assert '<a class="btn btn-danger" href="#action-roll_back">Roll back…</a>' in body
    assert 'id="action-roll_back"' in body and 'id="action-stop"' in body


def test_the_lever_says_who_pulls_it_to_those_who_may_not(client, manager, viewer):
    initiative = wide_launch(user=manager, verdict=Verdict.BELOW, pilot=93.7)

    body = page(client, viewer, initiative).content.decode()

    assert RUNS_IN_PRODUCTION not in body
    assert "An executive or a programme manager takes that decision." in body
    assert "#action-roll_back" not in body


def test_the_alert_says_since_when_the_metric_is_below(client, manager):
    initiative = wide_launch(user=manager, verdict=Verdict.BELOW, pilot=93.7, days_below=20)
    flag_now = timezone.now() + timedelta(days=15)
    purgatory.sync_flags(now=flag_now)  # 15 days on, the run of below snapshots is flagged

    alert = page(client, manager, initiative).context["wide_alert"]

    assert alert["below_since"] is not None
    assert (timezone.now() - alert["below_since"]).days == 0  # launched today: counted since


def test_a_wide_launch_meeting_its_threshold_runs_in_production(client, manager):
    initiative = wide_launch(user=manager, verdict=Verdict.MEETING, pilot=96.2)

    response = page(client, manager, initiative)

    assert response.context["wide_alert"] is None
    assert RUNS_IN_PRODUCTION in response.content.decode()


def test_the_trend_chart_names_the_threshold_on_its_axis(client, manager):
    initiative = wide_launch(user=manager, verdict=Verdict.BELOW, pilot=93.7, days_below=5)

    [panel] = page(client, manager, initiative).context["metrics"]

    labels = [label for _, label in panel["chart"].y_labels]
    assert labels[0] == "95.0"
    assert panel["chart"].y_labels[0][0] == panel["chart"].threshold_y
