"""Containment: what PostgreSQL cannot store or aggregate safely is refused at ingestion, and a
recompute that still fails for one metric records the error on that metric alone.

Every refusal is a 400 naming the item, the same on the JSON path, on the COPY path (batches
of COPY_FROM_ROWS or more) and in a CSV upload.
"""

import json
import math
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import scipy.stats
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError, connection, transaction
from django.utils import timezone

from gates.criteria import registry
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import ingest, status
from metrics.models import Cohort, Metric, MetricSnapshot, Observation, Verdict
from pages.dashboard import verdicts
from portfolio.models import Initiative
from tests.factories import DataFeedFactory, MetricFactory, MetricSnapshotFactory
from tests.helpers import advance
from tests.metrics.helpers import item, stored

pytestmark = pytest.mark.django_db

SIZES = pytest.mark.parametrize("size", [1, ingest.COPY_FROM_ROWS], ids=["json", "copy"])


@pytest.fixture
def feed(live):
    return live[0]


@pytest.fixture
def token(live):
    return live[1]


def batch(metric, size: int, bad: dict) -> list[dict]:
    """`size` valid items a minute apart, the last one changed by `bad`."""
    items = [item(metric, hours_ago=2 + i / 60) for i in range(size)]
    items[-1].update(bad)
    return items


def refused(response, size: int, field: str) -> str:
    """The one problem's message, after checking it names the last item and `field`."""
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(size - 1, field)], errors
    assert stored() == 0
    return errors[0]["message"]


# Values ------------------------------------------------------------------------------------------
@SIZES
@pytest.mark.parametrize("value", [1e160, -1e160, 1.0000001e50, 2**200])
def test_a_value_beyond_the_bound_is_refused_naming_the_item(
    client, post, feed, token, metric, size, value
):
    response = post(client, feed, token, batch(metric, size, {"value": value}))
    message = refused(response, size, "value")
    assert message == "is beyond ±1e50, the largest magnitude Gantry can aggregate safely."


@SIZES
def test_values_at_the_bound_are_accepted(client, post, feed, token, metric, size):
    items = batch(metric, size, {"value": -ingest.MAX_ABS_VALUE})
    items[0]["value"] = ingest.MAX_ABS_VALUE
    response = post(client, feed, token, items)
    assert response.status_code == 201, response.content
    assert stored() == size


def test_a_csv_value_beyond_the_bound_is_refused_naming_the_row(
    client, manager, initiative, feed, metric
):
    client.force_login(manager)
    moment = (timezone.now() - timedelta(hours=1)).isoformat()
    text = f"metric,cohort,observed_at,value\n{metric.slug},pilot,{moment},1e160\n"
    response = client.post(
        f"/initiatives/{initiative.slug}/upload/",
        {"feed": feed.pk, "file": SimpleUploadedFile("a.csv", text.encode())},
    )
    assert response.status_code == 400
    assert [(p.where, p.field) for p in response.context["problems"]] == [(2, "value")]
    assert "beyond ±1e50" in response.content.decode()


def test_the_bound_keeps_every_aggregate_and_the_welch_test_finite(feed, metric, require_postgres):
    """Ten rows of each cohort at ±1e50: PostgreSQL's sums, squares and deviations, and the
    Welch test built on them, stay finite numbers; at 1e160 the database would overflow."""
    now = timezone.now()
    bound = ingest.MAX_ABS_VALUE
    rows = [
        (metric.pk, cohort, now - timedelta(hours=i + 1), bound if i % 2 else -bound * 0.5)
        for i in range(10)
        for cohort in (Cohort.PILOT, Cohort.BASELINE)
    ]
    ingest.store(feed, rows)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stddev_samp(value), sum(value * value), avg(value) FROM metrics_observation"
        )
        deviation, squares, mean = cursor.fetchone()
        assert all(math.isfinite(x) for x in (deviation, squares, mean))
        with pytest.raises(DataError), transaction.atomic():
            cursor.execute("SELECT stddev_samp(v) FROM (VALUES (1e160::float8), (-1e160)) AS t(v)")

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = Metric.objects.get(pk=metric.pk).latest_snapshot
    assert snapshot.verdict != Verdict.ERROR, snapshot.summary
    assert snapshot.confidence is not None and math.isfinite(snapshot.confidence)


# Timestamps --------------------------------------------------------------------------------------
def _day() -> str:
    return (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%d")


BAD_TIMESTAMPS = {
    "year-1-ahead-of-utc": (lambda: "0001-01-01T00:00:00+01:00", "is out of range"),
    "year-9999-behind-utc": (lambda: "9999-12-31T23:30:00-01:00", "is out of range"),
    "offset-16h": (lambda: f"{_day()}T00:00:00+16:00", "has the UTC offset +16:00"),
    "offset-minus-16h": (lambda: f"{_day()}T00:00:00-16:00", "has the UTC offset -16:00"),
    "offset-23h59m59s": (lambda: f"{_day()}T00:00:00+23:59:59", "has the UTC offset +23:59:59"),
}


@SIZES
@pytest.mark.parametrize(("moment", "expected"), BAD_TIMESTAMPS.values(), ids=BAD_TIMESTAMPS)
def test_a_timestamp_postgresql_cannot_store_is_refused_naming_the_item(
    client, post, feed, token, metric, size, moment, expected
):
    response = post(client, feed, token, batch(metric, size, {"observed_at": moment()}))
    assert refused(response, size, "observed_at").startswith(expected)


@pytest.mark.parametrize(("moment", "expected"), BAD_TIMESTAMPS.values(), ids=BAD_TIMESTAMPS)
def test_a_csv_timestamp_postgresql_cannot_store_is_refused_naming_the_row(
    client, manager, initiative, feed, metric, moment, expected
):
    client.force_login(manager)
    text = f"metric,cohort,observed_at,value\n{metric.slug},pilot,{moment()},1\n"
    response = client.post(
        f"/initiatives/{initiative.slug}/upload/",
        {"feed": feed.pk, "file": SimpleUploadedFile("a.csv", text.encode())},
    )
    assert response.status_code == 400
    assert [(p.where, p.field) for p in response.context["problems"]] == [(2, "observed_at")]
    assert response.context["problems"][0].message.startswith(expected)


STORABLE_TIMESTAMPS = {
    "offset-15h59m": ("T08:00:00+15:59", timedelta(hours=15, minutes=59)),
    "offset-minus-15h59m59s": ("T08:00:00-15:59:59", -timedelta(hours=15, minutes=59, seconds=59)),
    "seconds-offset": ("T08:00:00+01:00:30", timedelta(hours=1, seconds=30)),
}


@SIZES
@pytest.mark.parametrize(
    ("suffix", "offset"), STORABLE_TIMESTAMPS.values(), ids=STORABLE_TIMESTAMPS
)
def test_unusual_but_storable_offsets_store_the_same_instant_on_both_paths(
    client, post, feed, token, metric, size, suffix, offset
):
    day = _day()
    response = post(client, feed, token, batch(metric, size, {"observed_at": day + suffix}))

    assert response.status_code == 201, response.content
    local = datetime.fromisoformat(f"{day}T08:00:00").replace(tzinfo=UTC)
    assert Observation.objects.filter(observed_at=local - offset).count() == 1


def test_the_first_instant_of_year_one_is_storable(client, post, feed, token, metric):
    response = post(client, feed, token, [item(metric, observed_at="0001-01-01T01:00:00+01:00")])
    assert response.status_code == 201, response.content
    assert Observation.objects.get().observed_at == datetime(1, 1, 1, tzinfo=UTC)


# Text --------------------------------------------------------------------------------------------
UNSTORABLE = {"nul": "resolution\x00rate", "lone-surrogate": "resolution\ud800rate"}


@SIZES
@pytest.mark.parametrize("field", ["metric", "cohort", "observed_at", "value"])
@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE)
def test_text_postgresql_cannot_encode_is_refused_naming_the_item(
    client, post, feed, token, metric, size, field, text
):
    body = json.dumps(batch(metric, size, {field: text}))  # \u0000 and \ud800 as JSON escapes
    response = post(client, feed, token, body)
    message = refused(response, size, field)
    assert message == "holds a character that cannot be stored (NUL or an unpaired surrogate)."


def test_an_unknown_field_named_with_unencodable_text_is_refused_as_json(
    client, post, feed, token, metric
):
    response = post(client, feed, token, json.dumps([dict(item(metric), **{"x\ud800": 1})]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("is not a known field")


@pytest.mark.parametrize("column", ["metric", "cohort", "observed_at", "value"])
def test_a_csv_cell_holding_nul_is_refused_naming_the_row_and_column(
    client, manager, initiative, feed, metric, column
):
    client.force_login(manager)
    cells = {
        "metric": metric.slug,
        "cohort": "pilot",
        "observed_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        "value": "1",
    }
    cells[column] = cells[column][:2] + "\x00" + cells[column][2:]
    text = "metric,cohort,observed_at,value\n" + ",".join(cells.values()) + "\n"
    response = client.post(
        f"/initiatives/{initiative.slug}/upload/",
        {"feed": feed.pk, "file": SimpleUploadedFile("a.csv", text.encode())},
    )
    assert response.status_code == 400
    assert [(p.where, p.field) for p in response.context["problems"]] == [(2, column)]
    assert "\x00" not in response.content.decode()
    assert stored() == 0


def test_a_csv_with_an_encoded_surrogate_is_not_utf8_text(client, manager, initiative, feed):
    client.force_login(manager)
    data = b"metric,cohort,observed_at,value\n\xed\xa0\x80,pilot,2026-01-01T00:00:00Z,1\n"
    response = client.post(
        f"/initiatives/{initiative.slug}/upload/",
        {"feed": feed.pk, "file": SimpleUploadedFile("a.csv", data)},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["file"] == ["The file is not UTF-8 text."]


# A recompute that fails for one metric -----------------------------------------------------------
def _with_data(initiative, feed, name: str, now, *, poison: bool = False) -> Metric:
    metric = MetricFactory(initiative=initiative, is_primary=False, name=name, slug=name)
    values = [1e160, -1e160] * 4 if poison else [88.0, 90.0, 91.0, 92.0, 89.0, 90.0, 87.0, 93.0]
    # Written directly, as rows stored before ingestion bounded values would be.
    Observation.objects.bulk_create(
        Observation(
            metric=metric,
            feed=feed,
            cohort=cohort,
            observed_at=now - timedelta(hours=i + 1),
            value=value if cohort == Cohort.PILOT else value - 5,
        )
        for i, value in enumerate(values)
        for cohort in (Cohort.PILOT, Cohort.BASELINE)
    )
    return metric


@pytest.mark.parametrize("listed", [True, False], ids=["listed", "all"])
def test_a_metric_whose_values_overflow_gets_an_error_and_every_other_is_computed(
    initiative, listed
):
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    good = [_with_data(initiative, feed, f"good-{n}", now) for n in range(5)]
    bad = _with_data(initiative, feed, "bad", now, poison=True)

    ids = [m.pk for m in [*good, bad]]
    count = status.recompute(metric_ids=ids if listed else None, now=now)

    assert count == (len(ids) if listed else Metric.objects.count())
    snapshot = Metric.objects.get(pk=bad.pk).latest_snapshot
    assert snapshot.verdict == Verdict.ERROR
    assert snapshot.summary.startswith("could not be computed: ")
    assert snapshot.summary.endswith("Check this metric's observations for extreme values")
    assert (snapshot.pilot_value, snapshot.confidence) == (None, None)
    for metric in good:
        snapshot = Metric.objects.get(pk=metric.pk).latest_snapshot
        assert snapshot.verdict == Verdict.MEETING, snapshot.summary
        assert snapshot.pilot_count == 8


def test_on_postgresql_the_overflow_is_the_database_s_and_is_named(initiative, require_postgres):
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    bad = _with_data(initiative, feed, "bad", now, poison=True)
    status.recompute(metric_ids=[bad.pk], now=now)
    summary = Metric.objects.get(pk=bad.pk).latest_snapshot.summary
    assert summary.startswith("could not be computed: value out of range: overflow.")


def test_an_overflow_in_the_whole_days_rollups_is_contained_to_its_metric(
    initiative, require_postgres
):
    """Rows on whole days past are read from the daily rollups, merged per metric by the
    database: a day whose sums could not be kept (values beyond the bound, so NULL) is an
    error on that metric alone, as the same rows are when read raw."""
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    good = _with_data(initiative, feed, "good", now)
    bad = MetricFactory(initiative=initiative, is_primary=False, name="bad", slug="bad")
    Observation.objects.bulk_create(
        Observation(
            metric=bad,
            feed=feed,
            cohort=cohort,
            observed_at=now - timedelta(days=days_ago, seconds=n),
            value=value,
        )
        for days_ago in (2, 3, 4)
        for n, value in enumerate([1e160, -1e160])
        for cohort in (Cohort.PILOT, Cohort.BASELINE)
    )

    assert status.recompute(now=now) == Metric.objects.count()

    snapshot = Metric.objects.get(pk=bad.pk).latest_snapshot
    assert snapshot.verdict == Verdict.ERROR
    assert snapshot.summary.startswith("could not be computed: value out of range: overflow")
    assert Metric.objects.get(pk=good.pk).latest_snapshot.verdict == Verdict.MEETING


def test_a_failing_aggregation_is_narrowed_down_by_halves_not_retried_per_metric(initiative):
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    metrics = [_with_data(initiative, feed, f"m-{n}", now) for n in range(16)]
    poisoned = metrics[11].pk
    real = status._window_stats

    def fails_with_the_poisoned_one(chosen, *args, **kwargs):
        if poisoned in {m.pk for m in chosen}:
            raise DataError("value out of range: overflow")
        return real(chosen, *args, **kwargs)

    with mock.patch.object(
        status, "_window_stats", side_effect=fails_with_the_poisoned_one
    ) as aggregate:
        status.recompute(metric_ids=[m.pk for m in metrics], now=now)

    assert aggregate.call_count == 1 + 2 * 4  # the whole, then both halves at each of 4 levels
    verdicts_found = dict(
        Metric.objects.filter(pk__in=[m.pk for m in metrics]).values_list(
            "pk", "latest_snapshot__verdict"
        )
    )
    assert verdicts_found.pop(poisoned) == Verdict.ERROR
    assert set(verdicts_found.values()) == {Verdict.MEETING}


def test_a_failure_in_the_statistics_is_recorded_on_that_metric_alone(initiative):
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    one, other = (_with_data(initiative, feed, name, now) for name in ("one", "other"))
    real = status.compare

    def overflow_for_one(pilot, baseline, **kwargs):
        if pilot.total == sum([88.0, 90.0, 91.0, 92.0, 89.0, 90.0, 87.0, 93.0]) and not hasattr(
            overflow_for_one, "done"
        ):
            overflow_for_one.done = True
            raise OverflowError("(34, 'Numerical result out of range')")
        return real(pilot, baseline, **kwargs)

    with mock.patch.object(status, "compare", side_effect=overflow_for_one):
        status.recompute(metric_ids=[one.pk, other.pk], now=now)

    found = sorted(
        Metric.objects.filter(pk__in=[one.pk, other.pk]).values_list(
            "latest_snapshot__verdict", flat=True
        )
    )
    assert found == [Verdict.ERROR, Verdict.MEETING]


def test_a_recompute_inside_a_transaction_survives_a_failing_aggregation(initiative):
    """The failed statement is undone to its savepoint, so the enclosing transaction (every
    test runs in one) goes on to write the snapshots."""
    now = timezone.now()
    feed = DataFeedFactory(initiative=initiative)
    good = _with_data(initiative, feed, "good", now)
    bad = _with_data(initiative, feed, "bad", now, poison=True)
    status.recompute(metric_ids=[good.pk, bad.pk], now=now)
    assert MetricSnapshot.objects.filter(metric__in=[good, bad]).count() == 2


def test_welch_statistics_match_scipy_at_the_value_bound():
    """The bound's reason in metrics.stats: variances of values at ±1e50 are squared safely."""
    bound = ingest.MAX_ABS_VALUE
    pilot = [bound, -bound] * 5
    baseline = [bound * 0.5, -bound] * 5
    expected = scipy.stats.ttest_ind(pilot, baseline, equal_var=False, alternative="greater")
    from metrics.stats import CohortStats, welch_confidence

    def stats(values):
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        return CohortStats(count=len(values), mean=mean, total=sum(values), stddev=sd)

    p_value, _ = welch_confidence(stats(pilot), stats(baseline), higher_is_better=True, min_count=5)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


# Where the error shows ---------------------------------------------------------------------------
def test_the_metric_panel_shows_the_error_badge_and_its_message(client, viewer, initiative, metric):
    MetricSnapshotFactory(
        metric=metric,
        verdict=Verdict.ERROR,
        pilot_value=None,
        baseline_value=None,
        summary="could not be computed: value out of range: overflow. Check this metric's "
        "observations for extreme values",
        latest=True,
    )
    client.force_login(viewer)

    body = client.get(initiative.get_absolute_url()).content.decode()

    assert '<span class="verdict verdict-error">Error</span>' in body
    assert "Could not be computed: value out of range: overflow." in body


def test_the_error_badge_has_a_style_of_its_own():
    from pathlib import Path

    from django.conf import settings

    css = (Path(settings.BASE_DIR) / "static" / "css" / "gantry.css").read_text()
    assert ".verdict-error {" in css


def test_an_error_fails_gate_four_s_threshold_criterion_saying_why(manager, initiative, metric):
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    MetricSnapshotFactory(
        metric=metric, verdict=Verdict.ERROR, summary="could not be computed: overflow", latest=True
    )
    fresh = Initiative.objects.get(pk=initiative.pk)
    result = {o.key: o for o in registry.evaluate(fresh, T.WIDEN)}["pilot_meets_threshold"]
    assert not result.passed
    assert "error — could not be computed: overflow" in result.reason


def test_the_dashboard_counts_errors_as_a_verdict_of_their_own(manager, initiative, metric):
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.ERROR, latest=True)
    counts = {
        c["verdict"]: (c["label"], c["count"]) for c in verdicts(Initiative.objects.all())["counts"]
    }
    assert counts[Verdict.ERROR] == ("Error", 1)
