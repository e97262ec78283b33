"""The ingestion API: POST /api/v1/feeds/<id>/observations with the feed's bearer token.

A batch is validated whole: one bad item rejects it with each problem's index and field,
and nothing is stored, not even the feed's delivery time.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jobs import publish
from metrics import ingest, recompute_queue, services, tasks
from metrics.models import Cohort, DataFeed, FeedKind, MetricSnapshot, Observation, RecomputeMark
from tests.factories import InitiativeFactory, MetricFactory
from tests.metrics.helpers import API, item, last_delivery, stored

pytestmark = pytest.mark.django_db

EARLIER = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


@pytest.fixture
def feed(live):
    return live[0]


@pytest.fixture
def token(live):
    return live[1]


@pytest.fixture
def delivered_before(feed):
    """The feed delivered once before, at a known time the tests can compare with."""
    DataFeed.objects.filter(pk=feed.pk).update(last_delivery_at=EARLIER)
    return EARLIER


@pytest.fixture
def other_metric(manager):
    """A metric of another initiative, with a slug this initiative does not use."""
    return MetricFactory(initiative=InitiativeFactory(), slug="other-initiative-metric")


def body(items) -> str:
    """JSON text as a client would send it; NaN and the infinities as JavaScript writes them."""
    return json.dumps(items, allow_nan=True)


def errors(response) -> list[tuple[int, str]]:
    return [(e["index"], e["field"]) for e in response.json()["errors"]]


# Accepted batches --------------------------------------------------------------------------------
def test_a_valid_batch_is_stored_and_answers_201_with_its_counts(client, post, feed, token, metric):
    items = [
        item(metric, hours_ago=3, value=91.5),
        item(metric, hours_ago=2, value=88),
        item(metric, cohort="baseline", hours_ago=2, value=-0.5),
    ]

    response = post(client, feed, token, body(items))

    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "duplicates": 0, "fresh": 3}
    rows = set(Observation.objects.values_list("metric_id", "feed_id", "cohort", "value"))
    assert rows == {
        (metric.pk, feed.pk, Cohort.PILOT, 91.5),
        (metric.pk, feed.pk, Cohort.PILOT, 88.0),
        (metric.pk, feed.pk, Cohort.BASELINE, -0.5),
    }
    stored_at = set(Observation.objects.values_list("observed_at", flat=True))
    assert stored_at == {datetime.fromisoformat(i["observed_at"]) for i in items}


def test_resending_a_batch_is_idempotent_and_counts_duplicates(client, post, feed, token, metric):
    items = [item(metric, hours_ago=h) for h in (1, 2, 3)]
    assert post(client, feed, token, body(items)).json() == {
        "created": 3,
        "duplicates": 0,
        "fresh": 3,
    }

    again = post(client, feed, token, body(items))

    assert again.status_code == 201
    assert again.json() == {"created": 0, "duplicates": 3, "fresh": 0}
    assert stored() == 3


def test_a_batch_overlapping_an_earlier_one_stores_only_the_new_observations(
    client, post, feed, token, metric
):
    one, two, five = (item(metric, hours_ago=h) for h in (1, 2, 5))
    post(client, feed, token, body([one, two]))
    response = post(client, feed, token, body([one, two, five]))
    assert response.json() == {"created": 1, "duplicates": 2, "fresh": 1}
    assert stored() == 3


def test_repeats_inside_one_batch_are_stored_once_and_counted_as_duplicates(
    client, post, feed, token, metric
):
    one, two = item(metric, hours_ago=1), item(metric, hours_ago=2)
    response = post(client, feed, token, body([one, two, one, dict(one, value=70.0)]))
    assert response.json() == {"created": 2, "duplicates": 2, "fresh": 2}
    assert stored() == 2


def test_the_same_instant_written_with_another_offset_is_the_same_observation(
    client, post, feed, token, metric
):
    utc = item(metric, observed_at="2026-01-02T10:00:00+00:00")
    paris = item(metric, observed_at="2026-01-02T11:00:00+01:00")
    response = post(client, feed, token, body([utc, paris]))
    assert response.json() == {"created": 1, "duplicates": 1, "fresh": 0}


def test_the_same_moment_in_another_cohort_or_from_another_feed_is_a_new_observation(
    client, post, feed, token, metric, initiative, manager
):
    second_feed, second_token = services.create_feed(
        initiative=initiative,
        user=manager,
        name="Backfill",
        kind="live",
        owner=None,
        freshness_hours=24,
    )
    moment = item(metric, hours_ago=1)
    post(client, feed, token, body([moment, dict(moment, cohort="baseline")]))
    response = post(client, second_feed, second_token, body([moment]))
    assert response.json() == {"created": 1, "duplicates": 0, "fresh": 1}
    assert stored() == 3


@pytest.mark.parametrize(
    "reference",
    [
        lambda m: m.slug,
        lambda m: m.pk,
        lambda m: str(m.pk),
        lambda m: f"  {m.slug} ",
    ],
    ids=["slug", "id", "id-as-text", "slug-with-spaces"],
)
def test_a_metric_is_named_by_its_slug_or_its_id(client, post, feed, token, metric, reference):
    response = post(client, feed, token, body([item(metric, metric=reference(metric))]))
    assert response.status_code == 201, response.content
    assert Observation.objects.get().metric_id == metric.pk


def test_observations_of_every_metric_of_the_initiative_are_accepted(
    client, post, feed, token, metric, initiative
):
    second = MetricFactory(initiative=initiative, is_primary=False, slug="handling-time")
    response = post(client, feed, token, body([item(metric), item(second, cohort="production")]))
    assert response.status_code == 201
    assert set(Observation.objects.values_list("metric_id", flat=True)) == {metric.pk, second.pk}


def test_a_batch_of_exactly_the_maximum_size_is_accepted(client, post, feed, token, metric):
    start = timezone.now() - timedelta(days=1)
    items = [
        item(metric, observed_at=(start - timedelta(seconds=i)).isoformat(), value=float(i))
        for i in range(ingest.MAX_BATCH_ITEMS)
    ]
    response = post(client, feed, token, body(items))
    assert response.status_code == 201
    # Observed a day ago and earlier: outside the 24 h window, so none of them is fresh.
    assert response.json() == {"created": ingest.MAX_BATCH_ITEMS, "duplicates": 0, "fresh": 0}


# What a delivery changes -------------------------------------------------------------------------
def test_a_delivery_of_fresh_data_records_its_time_and_clears_the_stale_flag(
    client, post, feed, token, metric, delivered_before
):
    DataFeed.objects.filter(pk=feed.pk).update(is_stale=True)
    before = timezone.now()

    post(client, feed, token, body([item(metric)]))

    feed.refresh_from_db()
    assert before <= feed.last_delivery_at <= timezone.now()
    assert feed.last_fresh_at == feed.last_delivery_at
    assert not feed.is_stale
    assert Observation.objects.get().ingested_at == feed.last_delivery_at


def test_a_delivery_of_only_duplicates_is_recorded_but_refreshes_nothing(
    client, post, feed, token, metric
):
    stamp = item(metric)
    post(client, feed, token, body([stamp]))
    DataFeed.objects.filter(pk=feed.pk).update(
        last_delivery_at=EARLIER, last_fresh_at=EARLIER, is_stale=True
    )

    response = post(client, feed, token, body([stamp]))

    assert response.json() == {"created": 0, "duplicates": 1, "fresh": 0}
    feed.refresh_from_db()
    assert feed.last_delivery_at > EARLIER
    assert feed.last_fresh_at == EARLIER
    assert feed.is_stale


def test_the_metrics_a_delivery_touched_get_a_fresh_snapshot(
    client, post, feed, token, metric, initiative, eager, django_capture_on_commit_callbacks
):
    untouched = MetricFactory(initiative=initiative, is_primary=False)
    items = [item(metric, hours_ago=h, value=90.0 + h % 3) for h in range(1, 8)]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, feed, token, body(items))

    assert response.status_code == 201
    assert len(callbacks) == 1
    metric.refresh_from_db()
    snapshot = metric.latest_snapshot
    assert snapshot is not None
    assert snapshot.pilot_count == 7
    assert snapshot.verdict == "meeting"
    assert not MetricSnapshot.objects.filter(metric=untouched).exists()


def test_the_recompute_is_queued_only_after_the_delivery_commits(
    client, post, feed, token, metric, clean_cache, django_capture_on_commit_callbacks
):
    with mock.patch("metrics.tasks.recompute_metrics.apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            post(client, feed, token, body([item(metric)]))
        assert not apply_async.called
        for callback in callbacks:
            callback()
        assert publish.flush()
    apply_async.assert_called_once()


def test_deliveries_in_quick_succession_queue_one_recompute(
    client, post, feed, token, metric, settings, clean_cache, django_capture_on_commit_callbacks
):
    with mock.patch("metrics.tasks.recompute_metrics.apply_async") as apply_async:
        for hours in (1, 2, 3):
            with django_capture_on_commit_callbacks(execute=True):
                assert (
                    post(client, feed, token, body([item(metric, hours_ago=hours)])).status_code
                    == 201
                )
        assert publish.flush()

    apply_async.assert_called_once_with(
        args=[[metric.pk]], countdown=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
    )


def test_a_metric_not_yet_waiting_is_queued_even_while_another_waits(
    client, post, feed, token, metric, initiative, clean_cache, django_capture_on_commit_callbacks
):
    second = MetricFactory(initiative=initiative, is_primary=False)
    with mock.patch("metrics.tasks.recompute_metrics.apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            post(client, feed, token, body([item(metric)]))
        with django_capture_on_commit_callbacks(execute=True):
            post(client, feed, token, body([item(metric, hours_ago=2), item(second)]))
        assert publish.flush()

    assert [c.kwargs["args"] for c in apply_async.call_args_list] == [[[metric.pk]], [[second.pk]]]


def test_once_the_recompute_ran_the_next_delivery_queues_another(
    client, post, feed, token, metric, clean_cache, django_capture_on_commit_callbacks
):
    with mock.patch("metrics.tasks.recompute_metrics.apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            post(client, feed, token, body([item(metric)]))
        tasks.recompute_metrics([metric.pk])  # what the worker does when the task runs
        with django_capture_on_commit_callbacks(execute=True):
            post(client, feed, token, body([item(metric, hours_ago=2)]))
        assert publish.flush()

    assert apply_async.call_count == 2


def test_a_broker_outage_does_not_lose_the_delivery(
    client,
    post,
    feed,
    token,
    metric,
    settings,
    clean_cache,
    django_capture_on_commit_callbacks,
    caplog,
):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 0
    with mock.patch(
        "metrics.tasks.recompute_metrics.apply_async", side_effect=ConnectionError("redis down")
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, feed, token, body([item(metric)]))
        assert publish.flush()

    assert response.status_code == 201
    assert stored() == 1
    assert "the tick will do it" in caplog.text
    # The mark committed with the data: the sweep recomputes it without the lost task.
    assert RecomputeMark.objects.filter(metric=metric).exists()
    assert recompute_queue.sweep() == 1
    assert not RecomputeMark.objects.exists()


# Authentication ----------------------------------------------------------------------------------
AUTHORIZATIONS = {
    "no-header": lambda token, other: None,
    "empty": lambda token, other: "",
    "scheme-only": lambda token, other: "Bearer",
    "scheme-and-space": lambda token, other: "Bearer ",
    "basic-scheme": lambda token, other: f"Basic {token}",
    "no-scheme": lambda token, other: token,
    "wrong-token": lambda token, other: f"Bearer {token}x",
    "truncated-token": lambda token, other: f"Bearer {token[:-1]}",
    "hint-only": lambda token, other: f"Bearer {token[:10]}",
    "another-feed-s-token": lambda token, other: f"Bearer {other}",
}


@pytest.mark.parametrize("authorization", AUTHORIZATIONS.values(), ids=AUTHORIZATIONS.keys())
def test_a_missing_malformed_or_wrong_token_answers_401_and_stores_nothing(
    client, feed, token, metric, manager, delivered_before, authorization
):
    _, other_token = services.create_feed(
        initiative=InitiativeFactory(framed=True),
        user=manager,
        name="Elsewhere",
        kind="live",
        owner=manager,
        freshness_hours=24,
    )
    header = authorization(token, other_token)
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    response = client.post(
        API.format(feed.pk), data=body([item(metric)]), content_type="application/json", **extra
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "bearer token" in response.json()["error"]
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


def test_a_token_only_opens_its_own_feed(client, post, feed, token, metric, initiative, manager):
    second, _ = services.create_feed(
        initiative=initiative,
        user=manager,
        name="Second",
        kind="live",
        owner=manager,
        freshness_hours=24,
    )
    assert post(client, second, token, body([item(metric)])).status_code == 401
    assert stored() == 0


def test_a_token_for_a_feed_that_does_not_exist_answers_401(client, token, metric):
    response = client.post(
        API.format(987654321),
        data=body([item(metric)]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 401


def test_the_bearer_scheme_is_case_insensitive(client, feed, token, metric):
    response = client.post(
        API.format(feed.pk),
        data=body([item(metric)]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"bearer {token}",
    )
    assert response.status_code == 201


def test_rotating_the_token_locks_out_the_old_one_and_opens_the_new_one(
    client, post, feed, token, metric, manager
):
    new_token = services.rotate_token(feed=feed, user=manager)

    assert new_token != token
    assert post(client, feed, token, body([item(metric)])).status_code == 401
    assert stored() == 0
    assert post(client, feed, new_token, body([item(metric)])).status_code == 201
    assert stored() == 1


def test_tokens_are_stored_only_as_their_hash(feed, token, manager):
    row = DataFeed.objects.filter(pk=feed.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row["token_hint"])
    assert len(row["token_hint"]) <= 10 < len(token)
    assert not any(token in str(value) for value in row.values())

    rotated = services.rotate_token(feed=feed, user=manager)
    row = DataFeed.objects.filter(pk=feed.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(rotated.encode()).hexdigest()
    assert not any(t in str(v) for v in row.values() for t in (token, rotated))


def test_the_api_needs_no_session_login(post, feed, token, metric):
    response = post(Client(), feed, token, body([item(metric)]))
    assert response.status_code == 201  # not a redirect to the login page


def test_a_session_login_without_the_token_is_not_enough(client, post, feed, metric, manager):
    client.force_login(manager)
    assert post(client, feed, None, body([item(metric)])).status_code == 401


def test_the_api_needs_no_csrf_token(post, feed, token, metric):
    response = post(Client(enforce_csrf_checks=True), feed, token, body([item(metric)]))
    assert response.status_code == 201


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_only_post_is_allowed(client, feed, token, method):
    response = getattr(client, method)(API.format(feed.pk), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


# Metrics of another initiative -------------------------------------------------------------------
@pytest.mark.parametrize(
    "reference",
    [lambda m: m.pk, lambda m: str(m.pk), lambda m: m.slug],
    ids=["by-id", "by-id-as-text", "by-slug"],
)
def test_a_metric_of_another_initiative_answers_403_and_stores_nothing(
    client, post, feed, token, metric, other_metric, delivered_before, reference
):
    items = [
        item(metric),
        item(other_metric, metric=reference(other_metric)),
        item(metric, hours_ago=3),
    ]

    response = post(client, feed, token, body(items))

    assert response.status_code == 403
    assert "another initiative" in response.json()["error"]
    assert errors(response) == [(1, "metric")]
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


# Rejected batches: nothing is stored -------------------------------------------------------------
def _without(name):
    return lambda m, good: {k: v for k, v in good.items() if k != name}


def _with(**changes):
    return lambda m, good: {**good, **changes}


NOW_PLUS_A_DAY = object()  # replaced at run time: "now" must be the test's now

BAD_ITEMS = {
    # value
    "nan": (_with(value=float("nan")), ["value"]),
    "infinity": (_with(value=float("inf")), ["value"]),
    "minus-infinity": (_with(value=float("-inf")), ["value"]),
    "number-as-string": (_with(value="90.5"), ["value"]),
    "boolean-value": (_with(value=True), ["value"]),
    "null-value": (_with(value=None), ["value"]),
    "list-value": (_with(value=[90]), ["value"]),
    "value-beyond-a-double": (_with(value=10**400), ["value"]),
    # missing and unknown fields
    "missing-metric": (_without("metric"), ["metric"]),
    "missing-cohort": (_without("cohort"), ["cohort"]),
    "missing-observed-at": (_without("observed_at"), ["observed_at"]),
    "missing-value": (_without("value"), ["value"]),
    "empty-object": (lambda m, good: {}, ["metric", "cohort", "observed_at", "value"]),
    "unknown-field": (_with(colour="blue"), ["colour"]),
    # cohort
    "unknown-cohort": (_with(cohort="control"), ["cohort"]),
    "cohort-in-capitals": (_with(cohort="Pilot"), ["cohort"]),
    "cohort-as-list": (_with(cohort=["pilot"]), ["cohort"]),
    "cohort-as-object": (_with(cohort={"name": "pilot"}), ["cohort"]),
    "null-cohort": (_with(cohort=None), ["cohort"]),
    # timestamps
    "naive-timestamp": (_with(observed_at="2026-01-02T10:00:00"), ["observed_at"]),
    "date-without-time": (_with(observed_at="2026-01-02"), ["observed_at"]),
    "non-iso-timestamp": (_with(observed_at="02/01/2026 10:00 +01:00"), ["observed_at"]),
    "words-for-a-timestamp": (_with(observed_at="yesterday"), ["observed_at"]),
    "epoch-seconds": (_with(observed_at=1767348000), ["observed_at"]),
    "future-timestamp": (_with(observed_at=NOW_PLUS_A_DAY), ["observed_at"]),
    "timestamp-before-year-one-in-utc": (
        _with(observed_at="0001-01-01T00:00:00+01:00"),
        ["observed_at"],
    ),
    # metric
    "unknown-metric": (_with(metric="no-such-metric"), ["metric"]),
    "unknown-metric-id": (_with(metric=987654321), ["metric"]),
    "metric-id-beyond-bigint": (_with(metric=10**30), ["metric"]),
    "superscript-digit-metric": (_with(metric="²"), ["metric"]),
    "metric-with-a-nul-character": (_with(metric="\x00m"), ["metric"]),
    "boolean-metric": (_with(metric=True), ["metric"]),
    "empty-metric": (_with(metric=""), ["metric"]),
    # not an observation at all
    "number-instead-of-object": (lambda m, good: 42, [""]),
    "list-instead-of-object": (lambda m, good: [good], [""]),
}


@pytest.mark.parametrize(("make", "fields"), BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_one_bad_item_rejects_the_batch_naming_its_index_and_field(
    client, post, feed, token, metric, delivered_before, make, fields
):
    bad = make(metric, item(metric, hours_ago=5))
    if isinstance(bad, dict) and bad.get("observed_at") is NOW_PLUS_A_DAY:
        bad["observed_at"] = (timezone.now() + timedelta(days=1)).isoformat()
    items = [item(metric, hours_ago=1), bad, item(metric, hours_ago=2)]

    response = post(client, feed, token, body(items))

    assert response.status_code == 400, response.content
    assert errors(response) == [(1, field) for field in fields]
    assert all(e["message"] for e in response.json()["errors"])
    assert "nothing was stored" in response.json()["error"]
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


def test_every_bad_item_of_a_batch_is_reported(client, post, feed, token, metric, delivered_before):
    items = [
        item(metric),
        item(metric, value="high"),
        item(metric, hours_ago=2),
        item(metric, cohort="control", observed_at="2026-01-02T10:00:00"),
        item(metric, metric="nope"),
    ]
    response = post(client, feed, token, body(items))
    assert response.status_code == 400
    assert errors(response) == [(1, "value"), (3, "cohort"), (3, "observed_at"), (4, "metric")]
    assert response.json()["error"].startswith("4 problem(s)")
    assert stored() == 0


def test_a_timestamp_a_little_ahead_of_the_server_clock_is_accepted(
    client, post, feed, token, metric
):
    ahead = (timezone.now() + timedelta(minutes=2)).isoformat()
    assert post(client, feed, token, body([item(metric, observed_at=ahead)])).status_code == 201


def test_the_error_messages_say_what_is_wrong(client, post, feed, token, metric):
    items = [
        item(metric, value=float("nan")),
        item(metric, observed_at="2026-01-02T10:00:00"),
        item(metric, cohort="control"),
    ]
    messages = [e["message"] for e in post(client, feed, token, body(items)).json()["errors"]]
    assert messages == [
        "NaN is not a finite number.",
        "has no timezone; add Z or an offset such as +01:00.",
        "must be one of pilot, baseline, production.",
    ]


BAD_BODIES = {
    "invalid-json": b'[{"metric": ',
    "empty-body": b"",
    "an-object-not-a-list": b'{"metric": "x", "cohort": "pilot"}',
    "a-string-not-a-list": b'"observations"',
    "null": b"null",
    "empty-list": b"[]",
    "not-utf-8": b'[{"metric": "\xff\xfe"}]',
    "nested-too-deeply": b"[" * 100_000 + b"]" * 100_000,
    "integer-with-too-many-digits": b"[" + b"9" * 5000 + b"]",
    "trailing-garbage": b'[{"metric": "x"}] and more',
}


@pytest.mark.parametrize("raw", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_body_that_is_not_a_json_list_of_observations_answers_400(
    client, post, feed, token, delivered_before, raw
):
    response = post(client, feed, token, raw)

    assert response.status_code == 400
    assert response.json()["error"]
    assert "errors" not in response.json()
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


# Size limits -------------------------------------------------------------------------------------
def test_a_body_over_the_size_limit_answers_413(client, post, feed, token, delivered_before):
    raw = b"[" + b" " * ingest.MAX_BODY_BYTES + b"]"
    response = post(client, feed, token, raw)
    assert response.status_code == 413
    assert str(ingest.MAX_BODY_BYTES) in response.json()["error"]
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


def test_a_body_over_the_server_upload_limit_answers_413(
    client, post, feed, token, metric, settings, delivered_before
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    response = post(client, feed, token, body([item(metric, hours_ago=h) for h in range(1, 6)]))
    assert response.status_code == 413
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


def test_a_batch_over_the_item_limit_answers_413(
    client, post, feed, token, metric, delivered_before
):
    one = item(metric)
    response = post(client, feed, token, body([one] * (ingest.MAX_BATCH_ITEMS + 1)))
    assert response.status_code == 413
    assert str(ingest.MAX_BATCH_ITEMS) in response.json()["error"]
    assert stored() == 0
    assert last_delivery(feed) == delivered_before


# Any payload: a clear answer, and nothing stored unless accepted ---------------------------------
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
OFFSETS = st.sampled_from(
    [None, UTC, dt_timezone(timedelta(hours=14)), dt_timezone(timedelta(hours=-12, minutes=-30))]
)
TIMESTAMPS = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    OFFSETS,
)
PAST = st.builds(
    lambda moment: moment.replace(tzinfo=UTC).isoformat(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2025, 12, 31)),
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def observations(references):
    """Batches mixing valid observations with anything JSON can hold."""
    valid = st.fixed_dictionaries(
        {
            "metric": st.sampled_from(references),
            "cohort": st.sampled_from(Cohort.values),
            "observed_at": PAST,
            "value": FINITE | st.integers(min_value=-(10**15), max_value=10**15),
        }
    )
    anything = st.builds(
        lambda fields, extra: {**fields, **extra},
        st.fixed_dictionaries(
            {},
            optional={
                "metric": st.sampled_from(references) | JSON_VALUES,
                "cohort": st.sampled_from([*Cohort.values, "Pilot", " pilot", ""]) | JSON_VALUES,
                "observed_at": TIMESTAMPS | PAST | JSON_VALUES,
                "value": FINITE | JSON_VALUES,
            },
        ),
        st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=1),
    )
    return st.lists(valid | valid | anything | JSON_VALUES, max_size=6)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_payload_gets_a_clear_answer_and_nothing_is_stored_unless_accepted(
    client, post, feed, token, metric, other_metric, data
):
    references = [metric.slug, metric.pk, str(metric.pk), other_metric.slug, other_metric.pk]
    items = data.draw(observations(references) | JSON_VALUES, label="payload")
    before, delivered = stored(), last_delivery(feed)

    response = post(client, feed, token, body(items))

    assert response.status_code in (201, 400, 403), response.content
    if response.status_code == 201:
        counts = response.json()
        assert counts["created"] + counts["duplicates"] == len(items)
        assert stored() == before + counts["created"]
    else:
        assert stored() == before
        assert last_delivery(feed) == delivered
        for problem in response.json().get("errors", []):
            assert 0 <= problem["index"] < len(items)
            assert isinstance(problem["field"], str) and problem["message"]


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_validation_accepts_a_batch_only_when_every_item_is_an_observation(
    feed, metric, other_metric, data
):
    items = data.draw(observations([metric.slug, metric.pk, other_metric.slug]), label="items")

    batch = ingest.validate(items, feed)

    if batch.ok:
        assert len(batch.rows) == len(items)
        for metric_id, cohort, moment, value in batch.rows:
            assert metric_id == metric.pk
            assert cohort in Cohort.values
            assert moment.tzinfo is not None
            assert value == value and abs(value) != float("inf")
    else:
        flagged = {p.where for p in batch.problems + batch.foreign}
        assert flagged and flagged <= set(range(len(items)))


def _checked_item_by_item(items, feed) -> ingest.Batch:
    with mock.patch.object(ingest, "_plain_rows", return_value=None):
        return ingest.validate(items, feed)


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_quick_check_of_a_plain_batch_decides_as_the_item_by_item_check_does(
    feed, metric, other_metric, data
):
    references = [metric.slug, metric.pk, str(metric.pk), f" {metric.slug}", other_metric.slug]
    items = data.draw(observations(references), label="items")

    assert ingest.validate(items, feed) == _checked_item_by_item(items, feed)


EDGES = {
    "utc-as-z": {"observed_at": "2026-01-02T10:00:00Z"},
    "utc-as-offset": {"observed_at": "2026-01-02T10:00:00+00:00"},
    "widest-offset": {"observed_at": "2026-01-02T10:00:00+15:59:59"},
    "beyond-the-widest-offset": {"observed_at": "2026-01-02T10:00:00+16:00"},
    "microseconds-and-offset": {"observed_at": "2026-01-02T10:00:00.123456-03:30"},
    "padded-timestamp": {"observed_at": " 2026-01-02T10:00:00Z "},
    "non-ascii-digit-timestamp": {"observed_at": "２026-01-02T10:00:00Z"},
    "year-one-east-of-utc": {"observed_at": "0001-01-01T00:30:00+01:00"},
    "a-minute-ahead": {"observed_at": "in-a-minute"},
    "an-hour-ahead": {"observed_at": "in-an-hour"},
    "integer-value": {"value": 7},
    "huge-integer-value": {"value": 10**400},
    "largest-value": {"value": ingest.MAX_ABS_VALUE},
    "beyond-the-largest-value": {"value": -ingest.MAX_ABS_VALUE * 1.0000001},
    "negative-zero": {"value": -0.0},
    "boolean-value": {"value": False},
    "metric-by-id": {"metric": "id"},
    "metric-by-id-as-text": {"metric": "id-text"},
    "padded-metric": {"metric": "padded"},
    "metric-of-another-initiative": {"metric": "other"},
    "cohort-in-capitals": {"cohort": "Baseline"},
}


@pytest.mark.parametrize("change", EDGES.values(), ids=EDGES.keys())
def test_edge_items_are_decided_alike_by_the_quick_and_the_item_by_item_check(
    feed, metric, other_metric, change
):
    now = timezone.now()
    references = {
        "id": metric.pk, "id-text": str(metric.pk), "padded": f" {metric.slug} ",
        "other": other_metric.slug,
    }  # fmt: skip
    moments = {
        "in-a-minute": (now + timedelta(minutes=1)).isoformat(),
        "in-an-hour": (now + timedelta(hours=1)).isoformat(),
    }
    edge = {**item(metric, hours_ago=3), **change}
    edge["metric"] = references.get(edge["metric"], edge["metric"])
    edge["observed_at"] = moments.get(edge["observed_at"], edge["observed_at"])
    items = [item(metric, hours_ago=1), edge]

    assert ingest.validate(items, feed) == _checked_item_by_item(items, feed)


def test_a_plain_batch_is_decided_by_the_quick_check(feed, metric):
    items = [item(metric, hours_ago=h) for h in range(1, 6)]
    items[1]["observed_at"] = "2026-01-02T10:00:00+01:00"
    items[2]["metric"] = metric.pk
    items[3]["value"] = 12

    rows = ingest._plain_rows(items, ingest.MetricIndex(feed), timezone.now())

    assert rows is not None
    assert rows == _checked_item_by_item(items, feed).rows
    assert rows[1][2] == datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    assert rows[3][3] == 12.0 and type(rows[3][3]) is float


def test_a_one_off_extract_delivers_through_the_api_like_a_live_feed(
    client, post, metric, initiative, manager
):
    extract, token = services.create_feed(
        initiative=initiative,
        user=manager,
        name="March extract",
        kind=FeedKind.ONE_OFF_EXTRACT,
        owner=manager,
        freshness_hours=24,
    )
    assert post(client, extract, token, body([item(metric)])).status_code == 201
