"""The review's life: opened by gate 2's decision, decided pass or fail through gate 3.

A failed review sends the initiative back to thin slice and turns each unchecked item into
pre-launch work, which gate 4 waits for.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from gates.criteria import registry
from gates.models import GateDecision
from gates.services import GateRefused
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import ingest
from metrics import services as metric_services
from metrics.models import FeedKind
from portfolio.models import Initiative
from readiness import services
from readiness.models import (
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
    ReviewOutcome,
    WorkStatus,
)
from tests.helpers import advance
from tests.readiness.helpers import (
    ASSIGNMENT,
    check,
    decide,
    items_of,
    open_review,
    submit_for_review,
)

DONE = "Fixed and verified in the runbook."  # the evidence work is closed with

pytestmark = pytest.mark.django_db

KEYS = list(ASSIGNMENT)


def reload(initiative) -> Initiative:
    return Initiative.objects.get(pk=initiative.pk)


def failing_keys(exc: GateRefused) -> set[str]:
    return {outcome.key for outcome in exc.value.failing}


def check_only(items, cast, keys) -> None:
    for key in keys:
        check(items[key], getattr(cast, ASSIGNMENT[key]))


# Opening ------------------------------------------------------------------------------------
def test_submitting_for_review_opens_a_review_on_the_newest_checklist_with_one_item_each(
    initiative, cast
):
    # Gate 2 passes on real data: a live feed with an owner delivered the primary metric.
    advance(initiative, Stage.THIN_SLICE, user=cast.pm)
    Initiative.objects.filter(pk=initiative.pk).update(
        logging_evidence="https://logs.example.internal/claims-triage",
        security_model="Adjusters see their own region's claims; the model sees no names.",
    )
    initiative = reload(initiative)
    feed, _ = metric_services.create_feed(
        initiative=initiative,
        user=cast.pm,
        name="Claims events",
        kind=FeedKind.LIVE,
        owner=cast.delivery_lead,
        freshness_hours=24,
    )
    # Delivered through ingestion, as the API delivers it: fresh data Gantry did not hold.
    ingest.store(
        feed, [(initiative.primary_metric.pk, "pilot", timezone.now() - timedelta(hours=2), 88.0)]
    )
    template = services.current_template()

    decision = decide(initiative, T.SUBMIT_FOR_REVIEW, cast.delivery_lead)

    assert reload(initiative).stage == Stage.READINESS_REVIEW
    review = ReadinessReview.objects.get(initiative=initiative)
    assert review.outcome == ReviewOutcome.OPEN
    assert review.template == template
    assert (review.opened_by, review.opened_at) == (cast.delivery_lead, decision.decided_at)
    items = list(review.items.all())
    assert sorted(i.template_item_id for i in items) == sorted(
        template.items.values_list("pk", flat=True)
    )
    assert len(items) == len(ASSIGNMENT) == 6
    assert all(
        not i.checked and i.assignee_id is None and not i.evidence_text and i.version == 1
        for i in items
    )


def test_a_refused_submission_opens_no_review(initiative, cast):
    advance(initiative, Stage.THIN_SLICE, user=cast.pm)
    with pytest.raises(GateRefused):
        decide(initiative, T.SUBMIT_FOR_REVIEW, cast.pm)  # no feed, no data, no logging
    assert not ReadinessReview.objects.filter(initiative=initiative).exists()


def test_the_database_allows_one_open_review_per_initiative(review, cast):
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadinessReview.objects.create(
            initiative=review.initiative,
            template=review.template,
            opened_by=cast.pm,
            opened_at=timezone.now(),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        services.open_review(review.initiative, GateDecision.objects.latest("decided_at"))
    assert ReadinessReview.objects.filter(initiative=review.initiative).count() == 1


def test_closed_reviews_of_one_initiative_may_be_many(review, cast):
    for _ in range(2):
        ReadinessReview.objects.create(
            initiative=review.initiative,
            template=review.template,
            opened_by=cast.pm,
            opened_at=timezone.now(),
            outcome=ReviewOutcome.FAILED,
        )
    assert ReadinessReview.objects.filter(initiative=review.initiative).count() == 3


def test_the_review_after_a_failed_one_starts_fresh(initiative, items, cast):
    check_only(items, cast, ["data_pipeline", "security_access"])
    first = open_review(initiative)
    decide(initiative, T.FAIL_REVIEW, cast.pm)

    second = submit_for_review(initiative, user=cast.pm)

    assert second.pk != first.pk
    new_items = list(second.items.all())
    assert len(new_items) == 6
    assert not {i.pk for i in new_items} & {i.pk for i in items.values()}
    assert all(
        not i.checked and i.assignee_id is None and not i.evidence_text and not i.events.exists()
        for i in new_items
    )
    # The failed review keeps what it found.
    first.refresh_from_db()
    assert first.outcome == ReviewOutcome.FAILED
    assert first.items.filter(checked=True).count() == 2


# Gate 3: pass -------------------------------------------------------------------------------
@pytest.mark.parametrize("unchecked", KEYS)
def test_pass_review_is_refused_naming_checklist_complete_while_an_item_is_unchecked(
    initiative, items, cast, unchecked
):
    check_only(items, cast, [k for k in KEYS if k != unchecked])

    with pytest.raises(GateRefused) as exc:
        decide(initiative, T.PASS_REVIEW, cast.pm)

    assert failing_keys(exc) == {"checklist_complete"}
    assert items[unchecked].template_item.title in str(exc.value)
    assert reload(initiative).stage == Stage.READINESS_REVIEW
    assert open_review(initiative).decision is None
    assert not initiative.decisions.filter(transition=T.PASS_REVIEW).exists()


def test_pass_review_is_refused_while_no_item_is_checked(initiative, items, cast):
    with pytest.raises(GateRefused) as exc:
        decide(initiative, T.PASS_REVIEW, cast.pm)
    assert failing_keys(exc) == {"checklist_complete"}
    assert "6 of 6 items are not checked" in str(exc.value)


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("operational_owner", None, "operational_owner_named"),
        ("narrow_audience", "", "narrow_audience_defined"),
        ("narrow_audience", "   ", "narrow_audience_defined"),
    ],
)
def test_pass_review_is_refused_without_operational_owner_or_narrow_audience(
    initiative, complete, cast, field, value, key
):
    Initiative.objects.filter(pk=initiative.pk).update(**{field: value})
    initiative = reload(initiative)

    with pytest.raises(GateRefused) as exc:
        decide(initiative, T.PASS_REVIEW, cast.pm)

    assert failing_keys(exc) == {key}
    assert reload(initiative).stage == Stage.READINESS_REVIEW
    assert open_review(initiative).outcome == ReviewOutcome.OPEN


def test_pass_review_with_every_item_checked_and_both_named_reaches_narrow_launch(
    initiative, complete, cast
):
    review = open_review(initiative)

    decision = decide(initiative, T.PASS_REVIEW, cast.pm, "Every question answered.")

    assert reload(initiative).stage == Stage.NARROW_LAUNCH
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.PASSED
    assert (review.decided_by, review.decided_at) == (cast.pm, decision.decided_at)
    assert review.decision == decision
    assert (decision.from_stage, decision.to_stage) == (
        Stage.READINESS_REVIEW,
        Stage.NARROW_LAUNCH,
    )
    seen = {c["key"]: c["passed"] for c in decision.evidence["criteria"]}
    assert seen == {
        "checklist_complete": True,
        "operational_owner_named": True,
        "narrow_audience_defined": True,
    }
    assert not PreLaunchWorkItem.objects.exists()


# Gate 3: fail -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "checked",
    [
        [],
        ["data_pipeline"],
        ["data_pipeline", "security_access", "cost_per_transaction"],
        [k for k in KEYS if k != "operational_owner"],
        KEYS,
    ],
    ids=["none-checked", "one-checked", "three-checked", "all-but-one-checked", "all-checked"],
)
def test_fail_review_returns_to_thin_slice_and_each_unchecked_item_becomes_one_open_work_item(
    initiative, items, cast, checked
):
    check_only(items, cast, checked)
    review = open_review(initiative)

    decision = decide(initiative, T.FAIL_REVIEW, cast.pm, "Not ready for production.")

    assert reload(initiative).stage == Stage.THIN_SLICE
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.FAILED
    assert (review.decided_by, review.decided_at, review.decision) == (
        cast.pm,
        decision.decided_at,
        decision,
    )
    work = {w.review_item_id: w for w in PreLaunchWorkItem.objects.all()}
    unchecked = [items[k] for k in KEYS if k not in checked]
    assert set(work) == {item.pk for item in unchecked}
    due = (decision.decided_at + timedelta(days=services.WORK_ITEM_DUE_DAYS)).date()
    for item in unchecked:
        w = work[item.pk]
        assert w.initiative_id == initiative.pk
        assert (
            w.assignee_id
            == item.assignee_id
            == getattr(cast, ASSIGNMENT[item.template_item.key]).pk
        )
        assert w.title == item.template_item.title
        assert (w.status, w.due_date) == (WorkStatus.OPEN, due)
    for key in checked:
        assert not PreLaunchWorkItem.objects.filter(review_item=items[key]).exists()


def test_an_unassigned_unchecked_item_becomes_unassigned_work(initiative, review, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    work = PreLaunchWorkItem.objects.all()
    assert work.count() == 6
    assert all(w.assignee_id is None for w in work)


def test_a_review_item_holds_at_most_one_work_item(initiative, items, cast):
    decision = decide(initiative, T.FAIL_REVIEW, cast.pm)
    existing = PreLaunchWorkItem.objects.first()

    with pytest.raises(IntegrityError), transaction.atomic():
        PreLaunchWorkItem.objects.create(
            initiative=initiative,
            review_item=existing.review_item,
            title="A second copy",
            due_date=existing.due_date,
        )
    # Running the effect again finds no open review to close: it creates nothing.
    services.record_fail(initiative, decision)
    assert PreLaunchWorkItem.objects.count() == 6


# Gate 4 waits for the pre-launch work -------------------------------------------------------
def widen_outcome(initiative):
    outcomes = {o.key: o for o in registry.evaluate(reload(initiative), T.WIDEN)}
    return outcomes["no_open_work_items"]


def test_gate_4_refuses_while_any_work_item_is_open_and_passes_when_all_are_done(
    initiative, items, cast
):
    check_only(items, cast, [k for k in KEYS if k not in ("monitoring_alerting", "data_pipeline")])
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    advance(initiative, Stage.NARROW_LAUNCH, user=cast.pm)  # a second review, passed
    work = list(PreLaunchWorkItem.objects.order_by("id"))
    assert len(work) == 2

    outcome = widen_outcome(initiative)
    assert not outcome.passed
    assert "2 pre-launch work item(s) open" in outcome.reason
    assert items["monitoring_alerting"].template_item.title in outcome.reason

    services.complete_work_item(work_item=work[0], user=cast.delivery_lead, evidence_text=DONE)
    assert not widen_outcome(initiative).passed

    services.complete_work_item(work_item=work[1], user=cast.pm2, evidence_text=DONE)
    outcome = widen_outcome(initiative)
    assert outcome.passed, outcome.reason
    done = PreLaunchWorkItem.objects.get(pk=work[1].pk)
    assert (done.status, done.done_by) == (WorkStatus.DONE, cast.pm2)
    assert done.done_at is not None


def test_widen_is_refused_through_decide_while_work_is_open(initiative, items, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    advance(initiative, Stage.NARROW_LAUNCH, user=cast.pm)
    with pytest.raises(GateRefused) as exc:
        decide(initiative, T.WIDEN, cast.pm)
    assert "no_open_work_items" in failing_keys(exc)


# Who closes a work item ---------------------------------------------------------------------
@pytest.fixture
def work_item(initiative, items, cast):
    """The open work item of the failed review's data pipeline item (the delivery lead's)."""
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    return PreLaunchWorkItem.objects.get(review_item=items["data_pipeline"])


@pytest.mark.parametrize("who", ["delivery_lead", "pm", "pm2"])
def test_the_assignee_or_a_programme_manager_completes_a_work_item(client, work_item, cast, who):
    client.force_login(getattr(cast, who))
    response = client.post(
        f"/work-items/{work_item.pk}/done/", {"next": "/my-work/", "evidence_text": DONE}
    )
    assert response.status_code == 302
    assert response["Location"] == "/my-work/"
    work_item.refresh_from_db()
    assert (work_item.status, work_item.done_by) == (WorkStatus.DONE, getattr(cast, who))


@pytest.mark.parametrize(
    "who", ["business_owner", "operational_owner", "other_owner", "executive", "viewer"]
)
def test_nobody_else_completes_a_work_item(client, work_item, cast, who):
    user = getattr(cast, who)
    with pytest.raises(PermissionDenied):
        services.complete_work_item(work_item=work_item, user=user, evidence_text=DONE)
    client.force_login(user)
    response = client.post(f"/work-items/{work_item.pk}/done/")
    assert response.status_code == 403
    work_item.refresh_from_db()
    assert (work_item.status, work_item.done_by, work_item.done_at) == (WorkStatus.OPEN, None, None)


def test_completing_a_done_work_item_again_keeps_who_did_it(work_item, cast):
    services.complete_work_item(work_item=work_item, user=cast.delivery_lead, evidence_text=DONE)
    first = PreLaunchWorkItem.objects.get(pk=work_item.pk)
    services.complete_work_item(work_item=first, user=cast.pm, evidence_text=DONE)
    again = PreLaunchWorkItem.objects.get(pk=work_item.pk)
    assert (again.done_by, again.done_at) == (cast.delivery_lead, first.done_at)


def test_work_item_done_ignores_a_foreign_next_url(client, work_item, cast):
    client.force_login(cast.delivery_lead)
    response = client.post(
        f"/work-items/{work_item.pk}/done/",
        {"next": "https://evil.example.com/", "evidence_text": DONE},
    )
    assert response["Location"] == "/my-work/"


def test_review_items_of_every_review_stay_with_their_review(initiative, items, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    second = submit_for_review(initiative, user=cast.pm)
    assert ReviewItem.objects.filter(review__initiative=initiative).count() == 12
    assert set(items_of(second)) == set(KEYS)


# Evidence on done, and reopening ----------------------------------------------------------------
def test_work_is_not_done_without_evidence_and_the_page_says_so(client, work_item, cast):
    with pytest.raises(ValidationError, match="Say what shows the work is done"):
        services.complete_work_item(work_item=work_item, user=cast.delivery_lead)
    client.force_login(cast.delivery_lead)
    response = client.post(
        f"/work-items/{work_item.pk}/done/", {"next": "/my-work/", "evidence_url": "not a url"}
    )
    assert response.status_code == 302  # back to the page, never a dead end
    page = client.get("/my-work/").content.decode()
    assert "Nothing was changed" in page
    work_item.refresh_from_db()
    assert (work_item.status, work_item.done_by) == (WorkStatus.OPEN, None)
    assert not work_item.events.exists()


def test_done_work_keeps_its_evidence_and_shows_it_with_its_review(client, work_item, cast):
    client.force_login(cast.delivery_lead)
    client.post(
        f"/work-items/{work_item.pk}/done/",
        {
            "evidence_text": "Retries added; see the runbook.",
            "evidence_url": "https://rb.example/x",
        },
    )
    event = work_item.events.get()
    assert (event.action, event.evidence_text, event.evidence_url) == (
        "done",
        "Retries added; see the runbook.",
        "https://rb.example/x",
    )
    body = client.get(work_item.initiative.get_absolute_url()).content.decode()
    assert "Done by" in body and "Retries added; see the runbook." in body
    assert work_item.review_item.review.get_absolute_url() in body


def test_reopened_work_holds_gate_four_again_and_is_recorded(client, work_item, cast):
    services.complete_work_item(work_item=work_item, user=cast.delivery_lead, evidence_text=DONE)
    assert work_item.title not in widen_outcome(work_item.initiative).reason
    client.force_login(cast.pm)
    empty = client.post(f"/work-items/{work_item.pk}/reopen/", {"reason": " "})
    assert empty.status_code == 302
    work_item.refresh_from_db()
    assert work_item.status == WorkStatus.DONE

    client.post(f"/work-items/{work_item.pk}/reopen/", {"reason": "The retries never deployed."})
    work_item.refresh_from_db()
    assert (work_item.status, work_item.done_by, work_item.done_at) == (WorkStatus.OPEN, None, None)
    assert work_item.title in widen_outcome(work_item.initiative).reason  # gate 4 waits again
    last = work_item.events.order_by("-at", "-id").first()
    assert (last.action, last.user, last.evidence_text) == (
        "reopened",
        cast.pm,
        "The retries never deployed.",
    )
    entry = work_item.initiative.audit_entries.order_by("-seq").first()
    assert entry.kind == "work_item" and "reopened by" in entry.summary


@pytest.mark.parametrize("who", ["business_owner", "executive", "viewer"])
def test_nobody_else_reopens_work(client, work_item, cast, who):
    services.complete_work_item(work_item=work_item, user=cast.delivery_lead, evidence_text=DONE)
    client.force_login(getattr(cast, who))
    response = client.post(f"/work-items/{work_item.pk}/reopen/", {"reason": "Mine."})
    assert response.status_code == 403
    work_item.refresh_from_db()
    assert work_item.status == WorkStatus.DONE
