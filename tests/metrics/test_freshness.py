"""Freshness comes from data, not arrival.

A feed is fresh when an API delivery, inside its freshness window, brought observations Gantry
did not already hold whose observed_at lies inside that window. Every delivery is recorded
(a Delivery row); duplicates, back-dated rows and CSV uploads are stored but refresh nothing.
"""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from metrics import ingest, queries, services, status
from metrics.backfill import derive_deliveries
from metrics.models import Cohort, DataFeed, Delivery, DeliverySource, FeedKind, Observation
from tests.factories import DataFeedFactory, InitiativeFactory, MetricFactory, ObservationFactory
from tests.metrics.helpers import API, item

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def feed(live):
    return live[0]


@pytest.fixture
def token(live):
    return live[1]


def store_at(moment, feed, rows, **kwargs):
    """ingest.store as it runs at `moment`."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return ingest.store(feed, rows, **kwargs)


def one(metric, observed_at) -> list[tuple]:
    """A batch of one pilot observation of `metric`."""
    return [(metric.pk, Cohort.PILOT, observed_at, 1.0)]


def reread(feed) -> DataFeed:
    return DataFeed.objects.get(pk=feed.pk)


# What a delivery counts ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [12, ingest.COPY_FROM_ROWS + 200], ids=["unnest", "copy"])
def test_only_new_rows_observed_inside_the_window_count_as_fresh_on_both_insert_paths(
    feed, metric, size
):
    """Both PostgreSQL paths (and SQLite's) count fresh rows from the rows they inserted."""
    window = feed.freshness_window
    held = [(metric.pk, Cohort.PILOT, NOW - timedelta(minutes=m + 1), 1.0) for m in range(4)]
    store_at(NOW - timedelta(minutes=1), feed, held)
    n = size - 4
    back_dated = [
        (metric.pk, Cohort.BASELINE, NOW - window - timedelta(minutes=m), 2.0)
        for m in range(n // 2)
    ]  # the first of them exactly at the window's edge: outside it
    fresh = [
        (metric.pk, Cohort.PILOT, NOW - window + timedelta(seconds=s + 1), 3.0)
        for s in range(n - n // 2)
    ]  # the first of them a second inside the window
    copying = mock.patch.object(ingest, "_insert_by_copy", wraps=ingest._insert_by_copy)

    with copying as copy:
        result = store_at(NOW, feed, held + back_dated + fresh)

    if connection.vendor == "postgresql":
        assert copy.called == (size >= ingest.COPY_FROM_ROWS)
    assert (result.created, result.duplicates, result.fresh) == (n, 4, n - n // 2)
    delivery = Delivery.objects.get(feed=feed, at=NOW)
    assert (delivery.source, delivery.received, delivery.created) == ("api", size, n)
    assert (delivery.duplicates, delivery.fresh, delivery.uploaded_by) == (4, n - n // 2, None)
    assert (reread(feed).last_fresh_at, reread(feed).last_delivery_at) == (NOW, NOW)


def test_every_delivery_is_recorded_even_one_of_duplicates_only(client, post, feed, token, metric):
    items = [item(metric, hours_ago=h) for h in (1, 2)]
    post(client, feed, token, items)
    post(client, feed, token, items)
    rows = list(Delivery.objects.order_by("at").values_list("received", "created", "fresh"))
    assert rows == [(2, 2, 2), (2, 0, 0)]


def test_re_sending_known_rows_does_not_make_a_stale_feed_fresh(feed, metric):
    rows = [(metric.pk, Cohort.PILOT, NOW - timedelta(hours=h), 90.0) for h in (1, 2, 3)]
    store_at(NOW, feed, rows)
    DataFeed.objects.filter(pk=feed.pk).update(is_stale=True)
    later = NOW + timedelta(days=3)

    result = store_at(later, feed, rows)

    assert (result.created, result.duplicates, result.fresh) == (0, 3, 0)
    assert reread(feed).is_stale
    assert reread(feed).last_fresh_at == NOW
    assert reread(feed).last_delivery_at == later


def test_one_row_observed_in_1999_refreshes_nothing(client, post, feed, token, metric):
    DataFeed.objects.filter(pk=feed.pk).update(is_stale=True)

    response = post(client, feed, token, [item(metric, observed_at="1999-06-01T09:00:00+00:00")])

    assert response.status_code == 201
    assert response.json() == {"created": 1, "duplicates": 0, "fresh": 0}
    assert reread(feed).is_stale
    assert reread(feed).last_fresh_at is None
    assert reread(feed).last_delivery_at is not None


def test_fresh_is_judged_against_the_feed_s_own_window(initiative, manager, metric):
    weekly, _ = services.create_feed(
        initiative=initiative, user=manager, name="Weekly", kind=FeedKind.LIVE, owner=manager,
        freshness_hours=24 * 7,
    )  # fmt: skip
    result = store_at(NOW, weekly, [(metric.pk, Cohort.PILOT, NOW - timedelta(days=6), 1.0)])
    assert result.fresh == 1


def test_last_fresh_data_never_moves_backwards(feed, metric):
    store_at(NOW, feed, [(metric.pk, Cohort.PILOT, NOW - timedelta(hours=1), 1.0)])
    # A delivery that started earlier but commits later.
    store_at(NOW - timedelta(hours=2), feed, one(metric, NOW - timedelta(hours=3)))
    assert (reread(feed).last_fresh_at, reread(feed).last_delivery_at) == (NOW, NOW)


# CSV uploads are one-off extracts -----------------------------------------------------------------
def test_a_csv_upload_is_recorded_as_a_one_off_extract_and_never_makes_a_feed_fresh(
    client, manager, initiative, feed, metric
):
    client.force_login(manager)
    moment = (timezone.now() - timedelta(hours=1)).isoformat()
    text = f"metric,cohort,observed_at,value\n{metric.slug},pilot,{moment},91\n"
    url = f"/initiatives/{initiative.slug}/upload/"
    preview = client.post(
        url, {"feed": feed.pk, "file": SimpleUploadedFile("a.csv", text.encode())}
    )

    response = client.post(url, {"payload": preview.context["payload"]})

    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert (delivery.source, delivery.created, delivery.fresh) == ("csv", 1, 1)
    assert delivery.uploaded_by == manager
    assert reread(feed).last_fresh_at is None
    assert reread(feed).last_delivery_at == delivery.at
    stale, _ = status.mark_stale_feeds(now=timezone.now() + timedelta(hours=25))
    assert stale == 1 and reread(feed).is_stale
    page = client.get(response["Location"]).content.decode()
    assert "An upload is a one-off extract: it does not make the feed fresh for gate 2." in page


def test_the_upload_page_says_an_upload_never_counts_as_a_live_delivery(
    client, manager, initiative, feed
):
    client.force_login(manager)
    body = client.get(f"/initiatives/{initiative.slug}/upload/").content.decode()
    assert "An upload is a one-off extract," in body
    assert "it never counts as a live delivery" in body
    assert "does not make the feed fresh for gate 2" in body


# The stale check ---------------------------------------------------------------------------------
def stale_now(feed, now) -> bool:
    status.mark_stale_feeds(now=now)
    return reread(feed).is_stale


def test_a_feed_that_delivers_only_old_or_known_rows_goes_stale(feed, metric):
    DataFeed.objects.filter(pk=feed.pk).update(created_at=NOW - timedelta(days=10))
    store_at(NOW - timedelta(days=2), feed, one(metric, NOW - timedelta(days=2, hours=1)))
    store_at(NOW - timedelta(hours=1), feed, one(metric, NOW - timedelta(days=9)))  # back-dated
    store_at(NOW - timedelta(minutes=30), feed, one(metric, NOW - timedelta(days=2, hours=1)))

    assert reread(feed).last_delivery_at == NOW - timedelta(minutes=30)
    assert stale_now(feed, NOW)


def test_a_fresh_delivery_inside_the_window_keeps_the_feed_fresh(feed, metric):
    DataFeed.objects.filter(pk=feed.pk).update(created_at=NOW - timedelta(days=10), is_stale=True)
    store_at(NOW - timedelta(hours=23), feed, one(metric, NOW - timedelta(hours=24)))
    assert not stale_now(feed, NOW)
    assert stale_now(feed, NOW + timedelta(hours=1, seconds=1))


def test_a_new_feed_has_one_window_before_it_can_be_stale(feed):
    DataFeed.objects.filter(pk=feed.pk).update(created_at=NOW - timedelta(hours=23))
    assert not stale_now(feed, NOW)
    assert stale_now(feed, NOW + timedelta(hours=2))


# The feeds panel ---------------------------------------------------------------------------------
def test_the_feeds_panel_shows_last_fresh_data_beside_last_delivery(
    client, viewer, post, initiative, feed, token, metric
):
    post(client, feed, token, [item(metric, hours_ago=1)])
    post(client, feed, token, [item(metric, hours_ago=100)])
    three_hours_ago = timezone.now() - timedelta(hours=3)
    DataFeed.objects.filter(pk=feed.pk).update(last_fresh_at=three_hours_ago)
    client.force_login(viewer)

    body = client.get(initiative.get_absolute_url()).content.decode()

    assert "last fresh data 3\xa0hours ago · last delivery just now" in body


# The delivery record for the readiness review ----------------------------------------------------
def test_the_delivery_record_counts_only_fresh_rows_of_api_deliveries_per_day(initiative, metric):
    feed = DataFeedFactory(initiative=initiative, name="Live")
    DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    today = timezone.now()
    yesterday = today - timedelta(days=1)
    rows = [(metric.pk, Cohort.PILOT, yesterday - timedelta(minutes=m), 1.0) for m in range(3)]
    store_at(yesterday, feed, rows)
    store_at(yesterday + timedelta(minutes=5), feed, rows)  # the same rows again: nothing fresh
    old = [(metric.pk, Cohort.PILOT, today - timedelta(days=30), 1.0)]
    store_at(today, feed, old)  # back-dated: nothing fresh
    csv = [(metric.pk, Cohort.PILOT, today - timedelta(minutes=5), 1.0)]
    store_at(today, feed, csv, source=DeliverySource.CSV)  # an extract: never counted

    record = queries.delivery_record(initiative, days=14)

    assert [r["feed"] for r in record] == [feed]
    days = record[0]["days"]
    assert len(days) == 14 and days[-1]["date"] == timezone.localdate()
    assert [d["count"] for d in days[-2:]] == [3, 0]
    assert sum(d["count"] for d in days) == 3
    assert record[0]["delivered_days"] == 1


def test_the_delivery_record_takes_two_queries_whatever_the_feeds(
    initiative, metric, django_assert_num_queries
):
    for n in range(4):
        feed = DataFeedFactory(initiative=initiative, name=f"Feed {n}")
        store_at(timezone.now(), feed, [(metric.pk, Cohort.PILOT, timezone.now(), 1.0)])
    with django_assert_num_queries(2):
        queries.delivery_record(initiative)


# Observations stored without a delivery (the upgrade that added deliveries) -----------------
def test_past_observations_get_their_deliveries_and_the_feed_its_last_fresh_data(metric):
    feed = DataFeedFactory(initiative=metric.initiative)
    delivered_at = NOW - timedelta(hours=5)
    for minutes in (10, 20):
        ObservationFactory(
            metric=metric,
            feed=feed,
            observed_at=delivered_at - timedelta(minutes=minutes),
            ingested_at=delivered_at,
        )
    ObservationFactory(
        metric=metric,
        feed=feed,
        observed_at=NOW - timedelta(days=40),
        ingested_at=NOW - timedelta(days=1),
    )
    other = DataFeedFactory(initiative=InitiativeFactory())

    assert derive_deliveries(DataFeed, Observation, Delivery) == 2
    assert derive_deliveries(DataFeed, Observation, Delivery) == 0

    deliveries = list(
        Delivery.objects.filter(feed=feed).order_by("at").values_list("at", "created", "fresh")
    )
    assert deliveries == [(NOW - timedelta(days=1), 1, 0), (delivered_at, 2, 2)]
    assert reread(feed).last_fresh_at == delivered_at
    assert reread(other).last_fresh_at is None


def test_the_api_answers_how_many_of_the_new_rows_were_fresh(client, post, feed, token):
    metric = feed.initiative.primary_metric
    second = MetricFactory(initiative=feed.initiative, is_primary=False)
    response = post(
        client,
        feed,
        token,
        [item(metric, hours_ago=2), item(second, hours_ago=30), item(metric, hours_ago=48)],
    )
    assert response.json() == {"created": 3, "duplicates": 0, "fresh": 1}
    assert Observation.objects.count() == 3
    assert API.format(feed.pk).endswith("/observations")
