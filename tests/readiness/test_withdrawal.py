"""Reviews and decisions that arrive out of the usual order: stops, imported histories."""

from gates import services
from gates.stages import Stage
from gates.stages import Transition as T
from readiness.models import ReviewOutcome
from tests.factories import InitiativeFactory
from tests.helpers import advance, criteria_passing


def test_stopping_during_review_withdraws_it_and_a_resubmission_opens_a_fresh_one(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    first = initiative.reviews.get()

    stop = services.decide(
        initiative=initiative,
        transition=T.STOP,
        user=manager,
        rationale="Superseded by the group-wide platform.",
        stop_reason="superseded",
    )

    first.refresh_from_db()
    assert first.outcome == ReviewOutcome.WITHDRAWN
    assert first.decision == stop and first.decided_by == manager
    assert not initiative.work_items.exists()

    with criteria_passing():
        services.decide(initiative=initiative, transition=T.REOPEN, user=manager, rationale="Back.")
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    assert initiative.reviews.count() == 2
    assert initiative.reviews.filter(outcome=ReviewOutcome.OPEN).exclude(pk=first.pk).count() == 1


def test_stopping_outside_review_touches_no_review(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    review = initiative.reviews.get()
    assert review.outcome == ReviewOutcome.PASSED

    services.decide(
        initiative=initiative,
        transition=T.STOP,
        user=manager,
        rationale="Cost too high at scale.",
        stop_reason="running_cost_too_high",
    )

    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.PASSED


def test_failing_a_review_imported_without_one_sends_it_back_without_work_items(manager):
    from django.utils import timezone

    initiative = InitiativeFactory(framed=True)
    services.import_history(
        initiative=initiative,
        decisions=[
            {"transition": t, "user": manager, "rationale": "Earlier.", "decided_at": at}
            for t, at in [
                (T.APPROVE_FRAME, timezone.now() - timezone.timedelta(days=9)),
                (T.SUBMIT_FOR_REVIEW, timezone.now() - timezone.timedelta(days=3)),
            ]
        ],
    )

    services.decide(
        initiative=initiative, transition=T.FAIL_REVIEW, user=manager, rationale="Not ready."
    )

    assert initiative.stage == Stage.THIN_SLICE
    assert not initiative.work_items.exists()
