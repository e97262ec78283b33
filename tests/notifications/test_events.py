"""Who hears what: each event the services emit becomes one notification per person it
concerns, written in the transaction of its cause, never to the person who caused it."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from gates import events
from gates import services as gate_services
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import ingest, status
from metrics.models import Cohort, DataFeed, Metric, Verdict
from notifications.models import (
    EmailState,
    Kind,
    Notification,
    Preference,
    Webhook,
    WebhookDelivery,
)
from pages import purgatory
from portfolio.models import FlagKind, Initiative, PurgatoryFlag
from portfolio.roles import Role
from readiness import services as readiness
from tests.factories import (
    DataFeedFactory,
    InitiativeFactory,
    MetricFactory,
    MetricSnapshotFactory,
    ObservationFactory,
    UserFactory,
)
from tests.helpers import advance
from tests.readiness.helpers import check, items_of, submit_for_review

pytestmark = pytest.mark.django_db


def heard(kind: str, **filters) -> dict[str, Notification]:
    """The notifications of `kind`, by recipient username."""
    rows = Notification.objects.filter(kind=kind, **filters).select_related("recipient")
    return {row.recipient.username: row for row in rows}


# Checklist items ----------------------------------------------------------------------------
def test_an_assignment_tells_the_assignee_and_not_the_manager_who_assigned(review, cast):
    item = items_of(review)["data_pipeline"]
    readiness.assign(item=item, assignee=cast.other_owner, user=cast.pm)

    told = heard(Kind.ITEM_ASSIGNED)
    assert list(told) == ["r-other"]
    note = told["r-other"]
    assert note.url == review.get_absolute_url()
    assert "Data pipeline" in note.title or item.template_item.title in note.title
    assert note.initiative_id == review.initiative_id
    assert note.email == EmailState.PENDING


def test_giving_an_item_to_someone_else_tells_both(review, cast):
    item = items_of(review)["data_pipeline"]
    readiness.assign(item=item, assignee=cast.other_owner, user=cast.pm)
    readiness.assign(
        item=items_of(review)["data_pipeline"], assignee=cast.delivery_lead, user=cast.pm
    )

    assert set(heard(Kind.ITEM_ASSIGNED)) == {"r-other", "r-dl"}
    assert list(heard(Kind.ITEM_UNASSIGNED)) == ["r-other"]


def test_taking_an_item_back_tells_who_held_it(review, cast):
    item = items_of(review)["data_pipeline"]
    readiness.assign(item=item, assignee=cast.other_owner, user=cast.pm)
    readiness.unassign(item=items_of(review)["data_pipeline"], user=cast.pm)

    assert list(heard(Kind.ITEM_UNASSIGNED)) == ["r-other"]


def test_assigning_several_items_at_once_tells_the_assignee_of_each(review, cast):
    chosen = list(items_of(review).values())[:3]
    readiness.assign_many(
        review=review,
        versions={item.pk: item.version for item in chosen},
        assignee=cast.other_owner,
        user=cast.pm,
    )
    rows = Notification.objects.filter(kind=Kind.ITEM_ASSIGNED, recipient=cast.other_owner)
    assert rows.count() == 3


def test_the_last_item_checked_tells_the_managers_who_may_decide(items, cast):
    held = list(items.values())
    for item in held[:-1]:
        check(item, item.assignee)
    assert not Notification.objects.filter(kind=Kind.REVIEW_READY).exists()

    check(held[-1], held[-1].assignee)

    # Both programme managers may decide (neither owns it or held an item); nobody else hears.
    assert set(heard(Kind.REVIEW_READY)) == {"r-pm", "r-pm2"}


def test_a_manager_who_held_an_item_is_not_told_the_review_is_ready(items, cast):
    # pm2 held an item: segregation of duties bars them from deciding, so they are not asked.
    item = items["data_pipeline"]
    readiness.assign(item=item, assignee=cast.pm2, user=cast.pm)
    readiness.assign(
        item=items_of(item.review)["data_pipeline"], assignee=cast.delivery_lead, user=cast.pm
    )
    for held in items_of(item.review).values():
        check(held, held.assignee)

    assert set(heard(Kind.REVIEW_READY)) == {"r-pm"}


# Gate decisions -----------------------------------------------------------------------------
def test_a_decision_tells_owners_sponsor_and_whoever_has_open_work(items, cast):
    initiative = items["data_pipeline"].review.initiative
    sponsor = UserFactory(username="r-sponsor", role=Role.EXECUTIVE)
    Initiative.objects.filter(pk=initiative.pk).update(sponsor=sponsor)
    readiness.assign(item=items["data_pipeline"], assignee=cast.other_owner, user=cast.pm)
    Notification.objects.all().delete()

    initiative.refresh_from_db()
    gate_services.decide(
        initiative=initiative,
        transition=T.STOP,
        user=cast.executive,
        rationale="Superseded by the vendor's product.",
        stop_reason="superseded",
    )

    told = heard(Kind.DECISION)
    assert set(told) == {"r-bo", "r-dl", "r-oo", "r-sponsor", "r-other"}
    assert "r-exec" not in told  # who decided knows
    assert "Superseded" in told["r-bo"].body
    assert told["r-bo"].url == initiative.get_absolute_url()


def test_a_decision_is_notified_once_per_person_even_when_they_hold_two_parts(initiative, cast):
    submit_for_review(initiative, user=cast.pm)
    # The delivery lead is an owner and holds work: one row all the same.
    rows = Notification.objects.filter(kind=Kind.DECISION, recipient=cast.delivery_lead)
    keys = list(rows.values_list("key", flat=True))
    assert len(keys) == len(set(keys))


def test_history_imported_is_not_announced(cast):
    initiative = InitiativeFactory(framed=True, business_owner=cast.business_owner)
    gate_services.import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": T.APPROVE_FRAME,
                "user": cast.pm,
                "decided_at": timezone.now() - timedelta(days=300),
                "rationale": "Approved on paper in 2025.",
            }
        ],
    )
    assert initiative.stage == Stage.THIN_SLICE
    assert not Notification.objects.filter(kind=Kind.DECISION).exists()


# Purgatory flags ----------------------------------------------------------------------------
@pytest.fixture
def ownerless(cast):
    """In thin slice with no business owner: flagged by the next sweep."""
    sponsor = UserFactory(username="f-sponsor", role=Role.EXECUTIVE)
    initiative = InitiativeFactory(
        framed=True, business_owner=None, delivery_lead=cast.delivery_lead, sponsor=sponsor
    )
    advance(initiative, Stage.THIN_SLICE, user=cast.pm)
    return initiative


def test_a_flag_raised_tells_owners_sponsor_and_programme_managers_once(ownerless, cast):
    purgatory.sync_flags()
    purgatory.sync_flags()  # again: nothing new is raised, nobody hears twice

    flag = PurgatoryFlag.objects.get(initiative=ownerless, kind=FlagKind.NO_BUSINESS_OWNER)
    told = heard(Kind.FLAG_RAISED, key=f"flag:{flag.pk}:raised")
    assert set(told) == {"r-dl", "f-sponsor", "r-pm", "r-pm2"}
    assert flag.reason in told["r-pm"].body


def test_a_flag_cleared_is_told_too(ownerless, cast):
    purgatory.sync_flags()
    flag = PurgatoryFlag.objects.get(initiative=ownerless, kind=FlagKind.NO_BUSINESS_OWNER)
    Initiative.objects.filter(pk=ownerless.pk).update(business_owner=cast.business_owner)

    purgatory.sync_flags()

    told = heard(Kind.FLAG_CLEARED, key=f"flag:{flag.pk}:cleared")
    assert set(told) == {"r-dl", "f-sponsor", "r-pm", "r-pm2", "r-bo"}


def _flag_event(initiative, flag_kind):
    return events.Event(
        kind="flag_raised",
        key=f"flag:test-{flag_kind}:raised",
        at=timezone.now(),
        initiative_id=initiative.pk,
        data={"flag": 0, "flag_kind": flag_kind, "label": "x", "reason": "Below for 20 days."},
    )


def test_a_below_threshold_flag_is_held_back_while_a_feed_is_stale(initiative, cast):
    DataFeedFactory(initiative=initiative, is_stale=True)
    events.emit(_flag_event(initiative, FlagKind.BELOW_THRESHOLD))
    assert not Notification.objects.exists()

    # Another kind of flag on the same initiative is told: only the follow-on is held.
    events.emit(_flag_event(initiative, FlagKind.STUCK))
    assert Notification.objects.filter(kind=Kind.FLAG_RAISED).exists()


def test_a_below_threshold_flag_is_told_when_the_feeds_are_fresh(initiative, cast):
    DataFeedFactory(initiative=initiative, is_stale=False)
    events.emit(_flag_event(initiative, FlagKind.BELOW_THRESHOLD))
    assert set(heard(Kind.FLAG_RAISED)) >= {"r-bo", "r-dl", "r-pm"}


# Feeds ----------------------------------------------------------------------------------------
@pytest.fixture
def late_feed(initiative, cast):
    metric = MetricFactory(initiative=initiative, name="Minutes per claim", is_primary=False)
    feed = DataFeedFactory(
        initiative=initiative,
        owner=cast.other_owner,
        last_fresh_at=timezone.now() - timedelta(hours=30),
        created_at=timezone.now() - timedelta(days=10),
    )
    return feed, metric


def test_a_feed_going_stale_tells_its_owner_and_the_delivery_lead(late_feed, cast):
    feed, _ = late_feed
    assert status.mark_stale_feeds() == (1, 0)
    status.mark_stale_feeds()  # still stale: said once

    told = heard(Kind.FEED_STALE)
    assert set(told) == {"r-other", "r-dl"}
    assert feed.name in told["r-other"].title
    # The root cause is named, and so are the alerts it holds back.
    assert "held back" in told["r-other"].body


def test_a_stale_feed_delivering_again_says_it_came_back_once(late_feed, cast):
    feed, metric = late_feed
    status.mark_stale_feeds()
    now = timezone.now()
    feed.refresh_from_db()

    ingest.store(feed, [(metric.pk, Cohort.PILOT, now - timedelta(minutes=5), 1.0)])
    ingest.store(feed, [(metric.pk, Cohort.PILOT, now - timedelta(minutes=4), 2.0)])

    assert set(heard(Kind.FEED_BACK)) == {"r-other", "r-dl"}
    assert not DataFeed.objects.get(pk=feed.pk).is_stale


def test_a_fresh_feed_delivering_says_nothing(late_feed):
    feed, metric = late_feed
    ingest.store(feed, [(metric.pk, Cohort.PILOT, timezone.now(), 1.0)])
    assert not Notification.objects.exists()


# Verdicts -------------------------------------------------------------------------------------
@pytest.fixture
def primary(cast):
    sponsor = UserFactory(username="v-sponsor", role=Role.EXECUTIVE)
    initiative = InitiativeFactory(framed=True, business_owner=cast.business_owner, sponsor=sponsor)
    return Metric.objects.get(initiative=initiative, is_primary=True)


def _history(metric, *verdicts):
    start = timezone.now() - timedelta(hours=len(verdicts))
    for n, verdict in enumerate(verdicts):
        MetricSnapshotFactory(
            metric=metric, computed_at=start + timedelta(hours=n), verdict=verdict, latest=True
        )
    return Metric.objects.filter(pk=metric.pk)


@pytest.mark.parametrize(
    ("verdicts", "said"),
    [
        ([Verdict.MEETING, Verdict.BELOW], ("meeting", "below")),
        (
            [Verdict.BELOW, Verdict.STALE, Verdict.INSUFFICIENT_DATA, Verdict.MEETING],
            ("below", "meeting"),
        ),
        ([Verdict.MEETING, Verdict.STALE, Verdict.MEETING], None),  # a stale spell is no change
        ([Verdict.MEETING, Verdict.BELOW, Verdict.STALE], None),  # stale says nothing here
        ([Verdict.INSUFFICIENT_DATA, Verdict.MEETING], None),  # the first verdict is no change
        ([Verdict.BELOW, Verdict.BELOW], None),
    ],
)
def test_a_verdict_change_is_between_decisive_verdicts(primary, verdicts, said):
    found = status.verdict_changes(_history(primary, *verdicts))
    if said is None:
        assert found == []
    else:
        (event,) = found
        assert (event.data["was"], event.data["now"]) == said


def test_a_secondary_metric_changing_says_nothing(primary):
    other = MetricFactory(initiative=primary.initiative, is_primary=False)
    assert status.verdict_changes(_history(other, Verdict.MEETING, Verdict.BELOW)) == []


def test_a_verdict_change_tells_the_business_owner_and_sponsor(primary):
    events.emit(*status.verdict_changes(_history(primary, Verdict.MEETING, Verdict.BELOW)))
    told = heard(Kind.VERDICT)
    assert set(told) == {"r-bo", "v-sponsor"}
    assert "below threshold (was meeting threshold)" in told["r-bo"].title


def test_recompute_announces_a_change(primary):
    _history(primary, Verdict.MEETING)
    feed = DataFeedFactory(initiative=primary.initiative, last_fresh_at=timezone.now())
    for n in range(10):
        # Well under the 85 it must reach.
        ObservationFactory(metric=primary, feed=feed, cohort=Cohort.PILOT, value=60.0 + n % 3)
        ObservationFactory(metric=primary, feed=feed, cohort=Cohort.BASELINE, value=78.0 + n % 3)

    status.recompute(metric_ids=[primary.pk])
    status.recompute(metric_ids=[primary.pk])  # below again: no second announcement

    assert Metric.objects.get(pk=primary.pk).latest_snapshot.verdict == Verdict.BELOW
    assert set(heard(Kind.VERDICT)) == {"r-bo", "v-sponsor"}


@pytest.mark.parametrize("full", [True, False], ids=["full recompute", "one metric"])
@pytest.mark.parametrize(
    ("before", "said"),
    [
        ([Verdict.BELOW, Verdict.STALE], ("below", "meeting")),  # across a stale spell
        ([Verdict.BELOW], ("below", "meeting")),
        ([Verdict.MEETING, Verdict.STALE], None),  # meeting again after the spell
        ([Verdict.MEETING], None),
        ([Verdict.INSUFFICIENT_DATA], None),  # the first decisive verdict
    ],
)
def test_recompute_announces_only_a_change_of_decisive_verdict(primary, before, said, full):
    _history(primary, *before)
    feed = DataFeedFactory(initiative=primary.initiative, last_fresh_at=timezone.now())
    for n in range(10):
        # Well over the 85 it must reach, and over the baseline.
        ObservationFactory(metric=primary, feed=feed, cohort=Cohort.PILOT, value=95.0 + n % 3)
        ObservationFactory(metric=primary, feed=feed, cohort=Cohort.BASELINE, value=78.0 + n % 3)

    status.recompute(metric_ids=None if full else [primary.pk])

    assert Metric.objects.get(pk=primary.pk).latest_verdict == Verdict.MEETING
    told = heard(Kind.VERDICT)
    if said is None:
        assert told == {}
    else:
        assert set(told) == {"r-bo", "v-sponsor"}
        assert f"{said[1]} threshold (was {said[0]} threshold)" in told["r-bo"].title


# Rows, preferences and failures ---------------------------------------------------------------
def test_email_follows_the_persons_choice_and_address(review, cast):
    Preference.objects.create(user=cast.other_owner, kind=Kind.ITEM_ASSIGNED, email=False)
    no_address = UserFactory(username="r-noaddr", email="", role=Role.OWNER)
    for person, key in ((cast.other_owner, "data_pipeline"), (no_address, "security_access")):
        readiness.assign(item=items_of(review)[key], assignee=person, user=cast.pm)
    readiness.assign(
        item=items_of(review)["monitoring_alerting"], assignee=cast.delivery_lead, user=cast.pm
    )

    told = heard(Kind.ITEM_ASSIGNED)
    assert told["r-other"].email == EmailState.SKIPPED  # chose in-app only
    assert told["r-noaddr"].email == EmailState.SKIPPED  # nowhere to send it
    assert told["r-dl"].email == EmailState.PENDING
    assert told["r-dl"].email_next_at is not None


def test_a_cause_rolled_back_leaves_no_notification(review, cast):
    item = items_of(review)["data_pipeline"]
    with pytest.raises(RuntimeError), transaction.atomic():
        readiness.assign(item=item, assignee=cast.other_owner, user=cast.pm)
        raise RuntimeError("the request failed after the assignment")
    assert not Notification.objects.filter(kind=Kind.ITEM_ASSIGNED).exists()


def test_the_same_event_said_twice_is_one_notification(initiative, cast):
    event = _flag_event(initiative, FlagKind.STUCK)
    events.emit(event)
    events.emit(event)
    assert Notification.objects.filter(recipient=cast.business_owner).count() == 1


def test_a_failing_listener_neither_stops_the_cause_nor_the_other_listeners(review, cast):
    def broken(batch):
        raise ZeroDivisionError

    events.listen(broken)
    try:
        readiness.assign(
            item=items_of(review)["data_pipeline"], assignee=cast.other_owner, user=cast.pm
        )
    finally:
        events._listeners.remove(broken)
    assert items_of(review)["data_pipeline"].assignee == cast.other_owner
    assert heard(Kind.ITEM_ASSIGNED)


def test_webhooks_hear_the_kinds_they_ask_for(review, cast):
    every = Webhook.objects.create(name="All", url="http://127.0.0.1:9/a", secret="s1")
    flags_only = Webhook.objects.create(
        name="Flags", url="http://127.0.0.1:9/b", secret="s2", kinds=[Kind.FLAG_RAISED]
    )
    Webhook.objects.create(name="Off", url="http://127.0.0.1:9/c", secret="s3", active=False)

    readiness.assign(
        item=items_of(review)["data_pipeline"], assignee=cast.other_owner, user=cast.pm
    )

    deliveries = WebhookDelivery.objects.all()
    assert [d.webhook for d in deliveries] == [every]
    (delivery,) = deliveries
    assert delivery.kind == Kind.ITEM_ASSIGNED
    assert delivery.payload["url"].startswith("http")
    assert delivery.payload["title"] in delivery.payload["text"]
    assert not flags_only.deliveries.exists()
