"""Services act at `now=` when a caller says when (the demo's history, tests), and at the
real time otherwise; every time a decision reads, criteria included, is that one moment."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from gates import clock
from gates.models import AuditEntry
from gates.stages import Stage
from gates.stages import Transition as T
from readiness import services
from readiness.models import ReviewItemEvent
from tests.helpers import advance
from tests.readiness.helpers import ASSIGNMENT, EVIDENCE, LINK, fresh, items_of, numbers_for


@pytest.fixture
def moment():
    return timezone.now() - timedelta(days=40)


def test_outside_a_pinned_moment_the_clock_is_the_real_time():
    before = timezone.now()
    assert before <= clock.now() <= timezone.now()


def test_the_clock_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"), clock.at(datetime(2026, 1, 1)):
        pass


def test_a_decision_taken_at_a_moment_is_stamped_with_it(initiative, cast, moment):
    from gates import services as gate_services

    decision = gate_services.decide(
        initiative=initiative,
        transition=T.APPROVE_FRAME,
        user=cast.executive,
        rationale="Framed well.",
        now=moment,
    )
    initiative.refresh_from_db()
    assert decision.decided_at == moment
    assert initiative.stage == Stage.THIN_SLICE and initiative.stage_entered_at == moment
    assert decision.evidence["recorded_at"] == moment.isoformat()
    sealed = AuditEntry.objects.get(initiative=initiative, source_id=decision.pk, kind="decision")
    assert sealed.at == moment
    # Nothing leaks out of the call: the next read is the real time again.
    assert clock.now() - moment > timedelta(days=39)


def test_criteria_read_the_moment_of_the_decision(initiative, cast, moment):
    """Gate 4's "window elapsed" is judged at the decision's moment, not the real time."""
    from gates.criteria import registry

    advance(initiative, Stage.NARROW_LAUNCH, user=cast.pm)
    window = initiative.primary_metric.comparison_window_days
    entered = initiative.stage_entered_at

    def elapsed(at):
        with clock.at(at):
            outcomes = {o.key: o for o in registry.evaluate(initiative, T.WIDEN)}
        return outcomes["window_elapsed"].passed

    assert elapsed(entered + timedelta(days=window)) is True
    assert elapsed(entered + timedelta(days=window - 1)) is False


def test_assigning_and_checking_at_a_moment_stamp_the_item_and_its_events(review, cast):
    moment = timezone.now() - timedelta(days=3)
    item = items_of(review)["data_pipeline"]
    holder = getattr(cast, ASSIGNMENT["data_pipeline"])
    services.assign(item=item, assignee=holder, user=cast.pm, now=moment)
    services.check(
        item=fresh(item),
        user=holder,
        evidence_text=EVIDENCE,
        evidence_url=LINK,
        now=moment + timedelta(hours=2),
        **numbers_for(item),
    )
    row = fresh(item)
    assert row.checked_at == moment + timedelta(hours=2)
    times = list(
        ReviewItemEvent.objects.filter(item=item).order_by("at").values_list("at", flat=True)
    )
    assert times == [moment, moment + timedelta(hours=2)]


def test_a_review_failed_at_a_moment_dates_its_work_items_then(items, cast):
    from gates import services as gate_services
    from readiness.models import PreLaunchWorkItem

    initiative = items["data_pipeline"].review.initiative
    moment = timezone.now() - timedelta(days=2)
    gate_services.decide(
        initiative=initiative,
        transition=T.FAIL_REVIEW,
        user=cast.pm,
        rationale="Not ready yet.",
        now=moment,
    )
    work = PreLaunchWorkItem.objects.filter(initiative=initiative)
    assert work.exists()
    assert {w.created_at for w in work} == {moment}
    assert {w.due_date for w in work} == {(moment + timedelta(days=14)).date()}
