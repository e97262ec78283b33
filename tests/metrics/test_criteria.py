"""Gate criteria measured from data: gate 2's live, fresh feed and gate 4's pilot numbers."""

import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from gates import services as gates
from gates.criteria import registry
from gates.models import GateDecision
from gates.services import GateRefused
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import ingest, services, status
from metrics.models import (
    Cohort,
    DataFeed,
    DeliverySource,
    FeedKind,
    Metric,
    Observation,
    Verdict,
)
from portfolio.models import Initiative
from tests.factories import (
    DataFeedFactory,
    InitiativeFactory,
    MetricFactory,
    MetricSnapshotFactory,
    ObservationFactory,
)
from tests.helpers import advance
from tests.metrics.helpers import API, item

pytestmark = pytest.mark.django_db


def outcome(initiative, transition, key):
    """One criterion's outcome, on a freshly read initiative, through the registry."""
    fresh = Initiative.objects.get(pk=initiative.pk)
    return {o.key: o for o in registry.evaluate(fresh, transition)}[key]


def delivered(
    feed,
    metric,
    *,
    ago: timedelta,
    observed: timedelta = timedelta(minutes=30),
    source=DeliverySource.API,
    value: float = 90.0,
):
    """`feed` delivered, `ago`, one pilot observation of `metric` observed `observed` before
    that delivery, through ingest.store as the API (or an upload) does."""
    at = timezone.now() - ago
    with mock.patch("django.utils.timezone.now", return_value=at):
        return ingest.store(feed, [(metric.pk, Cohort.PILOT, at - observed, value)], source=source)


def test_the_data_criteria_are_registered_as_blocking():
    for transition, keys in [
        (T.SUBMIT_FOR_REVIEW, ["live_feed", "fresh_data"]),
        (T.WIDEN, ["pilot_meets_threshold", "pilot_beats_baseline"]),
    ]:
        criteria = {c.key: c for c in registry.criteria_for(transition)}
        for key in keys:
            assert criteria[key].check.__module__ == "metrics.criteria", key
            assert not criteria[key].advisory


# Gate 2: a live feed with an owner ---------------------------------------------------------------
def test_live_feed_fails_without_any_feed(initiative):
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "live_feed")
    assert not result.passed
    assert result.reason == "No data feed is registered."


def test_live_feed_fails_with_only_a_one_off_extract(initiative):
    DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "live_feed")
    assert not result.passed
    assert "Only one-off extracts" in result.reason
    assert "needs a live feed" in result.reason


def test_live_feed_fails_when_the_live_feed_has_no_owner(initiative):
    DataFeedFactory(initiative=initiative, owner=None)
    DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "live_feed")
    assert not result.passed
    assert result.reason == "The live feed has no named owner."


def test_live_feed_passes_with_a_live_feed_and_its_owner(initiative):
    feed = DataFeedFactory(initiative=initiative, name="Claims events")
    DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "live_feed")
    assert result.passed
    assert result.reason == f"Live feed: “Claims events” (owner {feed.owner})."


def test_live_feed_ignores_feeds_of_other_initiatives(initiative):
    DataFeedFactory(initiative=InitiativeFactory())
    assert not outcome(initiative, T.SUBMIT_FOR_REVIEW, "live_feed").passed


# Gate 2: the feed actually delivered fresh data --------------------------------------------------
def test_fresh_data_passes_with_new_recent_observations_delivered_inside_the_window(
    initiative, metric
):
    feed = DataFeedFactory(initiative=initiative, name="Claims events", freshness_hours=24)
    delivered(feed, metric, ago=timedelta(hours=2, minutes=5))

    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")

    assert result.passed
    assert re.fullmatch(
        r"“Claims events” delivered fresh First-contact resolution data 2\shours(,\s5\sminutes)? "
        r"ago \(window 24 h\)\.",
        result.reason,
    ), result.reason


def test_fresh_data_fails_when_the_last_fresh_delivery_is_older_than_the_window(initiative, metric):
    feed = DataFeedFactory(initiative=initiative, freshness_hours=24)
    delivered(feed, metric, ago=timedelta(days=3, minutes=1))

    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")

    assert not result.passed
    assert re.fullmatch(
        r"No live data feed has delivered fresh First-contact resolution data in the last 24 h; "
        r"the last fresh data came 3\sdays ago\.",
        result.reason,
    ), result.reason


def test_fresh_data_uses_each_feed_s_own_window(initiative, metric):
    weekly = DataFeedFactory(initiative=initiative, freshness_hours=24 * 7)
    delivered(weekly, metric, ago=timedelta(days=3), observed=timedelta(days=2))
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")
    assert result.passed
    assert "(window 168 h)" in result.reason


def test_a_delivery_of_back_dated_observations_does_not_make_data_fresh(initiative, metric):
    feed = DataFeedFactory(initiative=initiative)
    delivered(feed, metric, ago=timedelta(minutes=10), observed=timedelta(days=30))

    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")

    assert not result.passed
    assert re.fullmatch(
        r"No live feed has delivered fresh data yet; the last delivery, 10\sminutes ago, brought "
        r"no new observations from inside the freshness window\.",
        result.reason,
    ), result.reason


def test_an_observation_from_1999_does_not_make_a_stale_feed_fresh(initiative, metric):
    feed = DataFeedFactory(initiative=initiative, is_stale=True)
    in_1999 = datetime(1999, 6, 1, 9, tzinfo=UTC)
    stored = ingest.store(feed, [(metric.pk, Cohort.PILOT, in_1999, 90.0)])
    assert (stored.created, stored.fresh) == (1, 0)
    assert DataFeed.objects.get(pk=feed.pk).is_stale
    assert not outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data").passed


def test_re_sending_observations_already_held_does_not_make_data_fresh(initiative, metric):
    feed = DataFeedFactory(initiative=initiative)
    first = delivered(feed, metric, ago=timedelta(days=3))
    row = Observation.objects.get()
    ingest.store(feed, [(metric.pk, row.cohort, row.observed_at, row.value)])  # now, again

    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")

    assert first.fresh == 1
    assert not result.passed
    assert re.search(
        r"the last fresh data came 3\sdays ago; the last delivery, 0\sminutes ago", result.reason
    ), result.reason


def test_a_csv_upload_of_fresh_observations_does_not_make_a_live_feed_fresh(initiative, metric):
    feed = DataFeedFactory(initiative=initiative)
    delivered(feed, metric, ago=timedelta(minutes=5), source=DeliverySource.CSV)
    assert DataFeed.objects.get(pk=feed.pk).last_fresh_at is None
    assert not outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data").passed


def test_a_one_off_extract_s_fresh_data_never_counts(initiative, metric):
    extract = DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    delivered(extract, metric, ago=timedelta(minutes=1))
    live = DataFeedFactory(initiative=initiative)
    delivered(live, metric, ago=timedelta(days=5))

    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")

    assert not result.passed
    assert re.search(r"the last fresh data came 5\sdays ago", result.reason)


def test_only_a_one_off_extract_s_data_fails_fresh_data(initiative, metric):
    extract = DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    delivered(extract, metric, ago=timedelta(minutes=1))
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")
    assert not result.passed
    assert result.reason == "No active live feed with an owner delivers data."


def test_a_feed_past_its_window_fails_fresh_data_whatever_its_stale_flag_says(initiative, metric):
    # Judged from delivery times read under the lock, not from the beat job's flag.
    feed = DataFeedFactory(initiative=initiative)
    delivered(feed, metric, ago=timedelta(hours=30))
    DataFeed.objects.filter(pk=feed.pk).update(is_stale=False)
    assert not outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data").passed


def test_one_fresh_feed_among_stale_ones_passes_naming_the_fresh_one(initiative, metric):
    stale = DataFeedFactory(initiative=initiative, name="Old pipeline")
    delivered(stale, metric, ago=timedelta(days=2))
    DataFeed.objects.filter(pk=stale.pk).update(is_stale=True)
    fresh = DataFeedFactory(initiative=initiative, name="New pipeline")
    delivered(fresh, metric, ago=timedelta(hours=3))

    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")

    assert result.passed
    assert result.reason.startswith("“New pipeline” delivered")


def test_fresh_data_of_another_metric_does_not_count(initiative, metric):
    feed = DataFeedFactory(initiative=initiative, name="Claims events")
    other = MetricFactory(initiative=initiative, is_primary=False, name="Handling time")
    delivered(feed, other, ago=timedelta(minutes=5))
    delivered(feed, metric, ago=timedelta(days=2))
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")
    assert not result.passed
    assert result.reason == (
        "“Claims events” delivered fresh data, but none of First-contact resolution."
    )


def test_fresh_data_from_a_feed_without_owner_does_not_count(initiative, metric):
    feed = DataFeedFactory(initiative=initiative, owner=None)
    delivered(feed, metric, ago=timedelta(minutes=5))
    assert not outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data").passed


def test_fresh_data_of_a_feed_paused_since_does_not_count(initiative, metric, manager):
    feed = DataFeedFactory(initiative=initiative)
    delivered(feed, metric, ago=timedelta(minutes=5))
    services.pause_feed(feed=feed, user=manager, reason="Vendor outage.")
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")
    assert not result.passed
    assert result.reason == "No active live feed with an owner delivers data."


def test_fresh_data_fails_without_a_primary_metric():
    initiative = InitiativeFactory()
    DataFeedFactory(initiative=initiative)
    result = outcome(initiative, T.SUBMIT_FOR_REVIEW, "fresh_data")
    assert not result.passed
    assert "No primary metric" in result.reason


# Gate 2 through gates.services.decide ------------------------------------------------------------
@pytest.fixture
def thin_slice(initiative, manager):
    advance(initiative, Stage.THIN_SLICE, user=manager)
    initiative.logging_evidence = "https://logs.example.com/claims"
    initiative.security_model = "Adjusters see their own claims; the pipeline writes only scores."
    initiative.save()
    return initiative


def test_submit_for_review_succeeds_with_a_live_feed_fresh_data_logging_and_security(
    client, thin_slice, manager
):
    lead = thin_slice.delivery_lead
    feed, token = services.create_feed(
        initiative=thin_slice,
        user=lead,
        name="Claims events",
        kind=FeedKind.LIVE,
        owner=lead,
        freshness_hours=24,
    )
    response = client.post(
        API.format(feed.pk),
        data=[item(thin_slice.primary_metric)],
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201

    decision = gates.decide(
        initiative=Initiative.objects.get(pk=thin_slice.pk),
        transition=T.SUBMIT_FOR_REVIEW,
        user=lead,
        rationale="The slice runs on live claims data.",
    )

    assert decision.to_stage == Stage.READINESS_REVIEW
    assert Initiative.objects.get(pk=thin_slice.pk).stage == Stage.READINESS_REVIEW
    evidence = {c["key"]: c for c in decision.evidence["criteria"]}
    assert evidence["live_feed"]["passed"] and "Claims events" in evidence["live_feed"]["reason"]
    assert evidence["fresh_data"]["passed"]


def test_submit_for_review_is_refused_when_the_feed_went_quiet(thin_slice, manager):
    feed = DataFeedFactory(initiative=thin_slice, name="Claims events")
    delivered(feed, thin_slice.primary_metric, ago=timedelta(days=3))

    with pytest.raises(GateRefused) as refused:
        gates.decide(
            initiative=Initiative.objects.get(pk=thin_slice.pk),
            transition=T.SUBMIT_FOR_REVIEW,
            user=manager,
            rationale="Try anyway.",
        )

    assert [o.key for o in refused.value.failing] == ["fresh_data"]
    assert re.search(r"the last fresh data came 3\sdays ago", str(refused.value))
    assert Initiative.objects.get(pk=thin_slice.pk).stage == Stage.THIN_SLICE
    assert not GateDecision.objects.filter(transition=T.SUBMIT_FOR_REVIEW).exists()


def test_submit_for_review_is_refused_with_only_a_one_off_extract(thin_slice, manager):
    extract = DataFeedFactory(initiative=thin_slice, kind=FeedKind.ONE_OFF_EXTRACT)
    delivered(extract, thin_slice.primary_metric, ago=timedelta(minutes=5))
    with pytest.raises(GateRefused) as refused:
        gates.decide(
            initiative=Initiative.objects.get(pk=thin_slice.pk),
            transition=T.SUBMIT_FOR_REVIEW,
            user=manager,
            rationale="Try anyway.",
        )
    assert {o.key for o in refused.value.failing} == {"live_feed", "fresh_data"}


# Gate 4: the pilot's numbers ---------------------------------------------------------------------
@pytest.fixture
def launched(initiative, manager):
    """In narrow launch for 20 days."""
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=20)
    )
    return Initiative.objects.get(pk=initiative.pk)


def widen(initiative, key):
    return outcome(initiative, T.WIDEN, key)


def test_gate_four_passes_on_a_pilot_that_meets_the_threshold_and_beats_the_baseline(
    launched, metric
):
    MetricSnapshotFactory(
        metric=metric,
        pilot_value=90.0,
        baseline_value=80.0,
        pilot_count=40,
        baseline_count=38,
        p_value=0.0004,
        summary="pilot mean 90 over 14 days meets 85; baseline 80; +12.5%, 100% confidence",
        latest=True,
    )

    meets = widen(launched, "pilot_meets_threshold")
    beats = widen(launched, "pilot_beats_baseline")

    assert meets.passed
    assert meets.reason == (
        "First-contact resolution: pilot mean 90 over 14 days meets 85; baseline 80; +12.5%, "
        f"100% confidence{_in_force(launched)}."
    )
    assert beats.passed
    assert beats.reason == (
        "The pilot beats the baseline: +12.5%, over 99.9% confidence (n = 40 and 38)."
    )


def test_the_sentences_quote_the_numbers_computed_from_observations(launched, metric):
    feed = DataFeedFactory(initiative=launched)
    now = timezone.now()
    for hours, (pilot, baseline) in enumerate(
        [(88, 78), (90, 80), (92, 82), (90, 80), (90, 80), (89, 79), (91, 81)], start=1
    ):
        ObservationFactory(
            metric=metric, feed=feed, observed_at=now - timedelta(hours=hours), value=pilot
        )
        ObservationFactory(
            metric=metric,
            feed=feed,
            cohort=Cohort.BASELINE,
            observed_at=now - timedelta(hours=hours),
            value=baseline,
        )
    status.recompute(metric_ids=[metric.pk])

    meets = widen(launched, "pilot_meets_threshold")
    beats = widen(launched, "pilot_beats_baseline")

    assert meets.passed and beats.passed
    assert "pilot mean 90 over 14 days meets 85; baseline 80; +12.5%" in meets.reason
    assert meets.reason.endswith(f"confidence{_in_force(launched)}.")
    assert re.fullmatch(
        r"The pilot beats the baseline: \+12\.5%, (over )?\d+(\.\d)?% confidence "
        r"\(n = 7 and 7\)\.",
        beats.reason,
    ), beats.reason


def test_a_pilot_below_threshold_fails_gate_four_quoting_the_numbers(launched, metric):
    MetricSnapshotFactory(
        metric=metric,
        pilot_value=82.0,
        verdict=Verdict.BELOW,
        summary="pilot mean 82 over 14 days misses 85; baseline 80; +2.5%, 91% confidence",
        latest=True,
    )
    result = widen(launched, "pilot_meets_threshold")
    assert not result.passed
    assert result.reason == (
        "First-contact resolution: below threshold — pilot mean 82 over 14 days misses 85; "
        f"baseline 80; +2.5%, 91% confidence{_in_force(launched)}"
    )


def _in_force(initiative) -> str:
    """What gate 4 says of the threshold it judged against: gate 1 put it in force."""
    approved = initiative.decisions.get(transition="approve_frame").decided_at
    return f" (threshold 85 in force since {approved.day} {approved:%b %Y}, gate 1)"


@pytest.mark.parametrize("verdict", [Verdict.INSUFFICIENT_DATA, Verdict.STALE])
def test_insufficient_or_stale_data_fails_the_threshold_criterion(launched, metric, verdict):
    MetricSnapshotFactory(
        metric=metric,
        verdict=verdict,
        pilot_count=3,
        summary="3 pilot observations in the last 14 days; at least 5 are needed.",
        latest=True,
    )
    result = widen(launched, "pilot_meets_threshold")
    assert not result.passed
    assert Verdict(verdict).label.lower() in result.reason


def test_no_snapshot_yet_fails_both_data_criteria(launched):
    assert widen(launched, "pilot_meets_threshold").reason == (
        "No status of First-contact resolution has been computed yet."
    )
    assert not widen(launched, "pilot_beats_baseline").passed


@pytest.mark.parametrize("key", ["pilot_meets_threshold", "pilot_beats_baseline"])
def test_a_snapshot_older_than_the_launch_fails_both_data_criteria(launched, metric, key):
    MetricSnapshotFactory(
        metric=metric, computed_at=launched.stage_entered_at - timedelta(minutes=1), latest=True
    )
    result = widen(launched, key)
    assert not result.passed
    assert "predates the narrow launch" in result.reason


@pytest.mark.parametrize(
    ("confidence", "passes"),
    [(0.999, True), (0.95, True), (0.9499, False), (0.90, False), (0.4, False)],
    ids=["99.9%", "exactly-95%", "just-under-95%", "90%", "40%"],
)
def test_the_pilot_must_beat_the_baseline_with_95_percent_confidence(
    launched, metric, confidence, passes
):
    MetricSnapshotFactory(
        metric=metric, p_value=1 - confidence, confidence=confidence, lift=0.03, latest=True
    )
    result = widen(launched, "pilot_beats_baseline")
    assert result.passed is passes
    assert "+3.0%" in result.reason
    assert "(n = 20 and 20)" in result.reason
    if not passes:
        assert result.reason.startswith("The pilot does not beat the baseline with 95% confidence")


def test_the_confidence_required_is_a_setting(launched, metric, settings):
    settings.GANTRY_GATE_CONFIDENCE = 0.99
    MetricSnapshotFactory(metric=metric, p_value=0.03, latest=True)
    result = widen(launched, "pilot_beats_baseline")
    assert not result.passed
    assert "with 99% confidence: +12.5%, 97%" in result.reason


def test_too_few_observations_to_compare_fail_quoting_the_counts(launched, metric):
    MetricSnapshotFactory(
        metric=metric, p_value=None, confidence=None, pilot_count=3, baseline_count=12, latest=True
    )
    result = widen(launched, "pilot_beats_baseline")
    assert not result.passed
    assert result.reason == "Too few observations to compare: 3 pilot, 12 baseline."


def test_gate_four_reads_the_latest_snapshot_only(launched, metric):
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, p_value=0.5, latest=True)
    MetricSnapshotFactory(
        metric=metric, computed_at=timezone.now() - timedelta(days=2), verdict=Verdict.MEETING
    )
    assert not widen(launched, "pilot_meets_threshold").passed
    assert not widen(launched, "pilot_beats_baseline").passed


def test_gate_four_data_criteria_fail_without_a_primary_metric(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    Metric.objects.filter(initiative=initiative).update(is_primary=False)
    assert widen(initiative, "pilot_meets_threshold").reason == "No primary metric is defined."
    assert not widen(initiative, "pilot_beats_baseline").passed


def test_a_stale_feed_turns_gate_four_s_threshold_criterion_red_after_a_recompute(launched, metric):
    feed = DataFeedFactory(initiative=launched)
    now = timezone.now()
    Observation.objects.bulk_create(
        Observation(
            metric=metric, feed=feed, cohort=c, observed_at=now - timedelta(hours=h), value=v
        )
        for h in range(1, 8)
        for c, v in ((Cohort.PILOT, 90.0 + h % 3), (Cohort.BASELINE, 80.0 + h % 3))
    )
    status.recompute(metric_ids=[metric.pk])
    assert widen(launched, "pilot_meets_threshold").passed

    DataFeed.objects.filter(pk=feed.pk).update(is_stale=True)
    status.recompute(metric_ids=[metric.pk])

    result = widen(launched, "pilot_meets_threshold")
    assert not result.passed
    assert "stale data" in result.reason


# Wide launch keeps a lever ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verdict", "passed", "says"),
    [
        (Verdict.BELOW, True, "is below its ship threshold"),
        (Verdict.MEETING, False, "still meets its ship threshold"),
        (Verdict.STALE, False, "stale data"),
    ],
)
def test_the_wide_launch_page_says_whether_the_numbers_still_hold(
    client, manager, verdict, passed, says
):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.WIDE_LAUNCH, user=manager)
    MetricSnapshotFactory(metric=initiative.primary_metric, verdict=verdict, latest=True)
    result = outcome(initiative, T.ROLL_BACK, "numbers_no_longer_hold")
    assert result.passed is passed and says in result.reason
    client.force_login(manager)
    body = client.get(initiative.get_absolute_url()).content.decode()
    assert "Primary metric below its threshold" in body and says in body
    # The lever is offered: back to the narrow audience, or stop.
    assert f"/initiatives/{initiative.slug}/decide/roll_back/" in body
    assert f"/initiatives/{initiative.slug}/decide/stop/" in body


def test_rolling_back_a_wide_launch_returns_it_to_narrow_launch(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.WIDE_LAUNCH, user=manager)
    MetricSnapshotFactory(metric=initiative.primary_metric, verdict=Verdict.BELOW, latest=True)
    decision = gates.decide(
        initiative=initiative,
        transition=T.ROLL_BACK,
        user=manager,
        rationale="Below threshold for three weeks since the March release.",
    )
    assert (decision.from_stage, decision.to_stage) == (Stage.WIDE_LAUNCH, Stage.NARROW_LAUNCH)
    criteria = {c["key"]: c for c in decision.evidence["criteria"]}
    assert criteria["numbers_no_longer_hold"]["passed"] is True
