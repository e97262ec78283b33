"""Pages of the readiness review: the review page, the initiative page's reviews, My work.

What each person sees and may do there, the actions posted from them, and what they cost in
queries (which must not grow with items, events, reviews or work items).
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.stages import Stage
from gates.stages import Transition as T
from metrics import services as metric_services
from metrics.models import Delivery, DeliverySource, FeedKind, Observation
from portfolio.models import Initiative
from readiness import services
from readiness.models import PreLaunchWorkItem, ReviewOutcome, WorkStatus
from tests.factories import InitiativeFactory
from tests.readiness.helpers import (
    ASSIGNMENT,
    EVIDENCE,
    LINK,
    check,
    decide,
    decide_url,
    fresh,
    item_url,
    items_of,
    new_version,
    open_review,
    review_url,
    submit_for_review,
)

DONE = "Fixed and verified in the runbook."  # the evidence work is closed with

pytestmark = pytest.mark.django_db

WAITING = "A programme manager with no stake in this initiative decides it."


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def block(body: str, item) -> str:
    """The part of the review page that shows one item."""
    start = body.index(f'id="item-{item.pk}"')
    end = body.find('class="card check-item', start)
    return body[start : end if end != -1 else body.index("</ol>", start)]


def actions(body: str) -> set[str]:
    return set(re.findall(r'<form method="post" action="([^"]+)"', body))


def item_actions(body: str, items, action: str) -> set[str]:
    return {key for key, item in items.items() if item_url(item, action) in actions(body)}


def holder(cast, key):
    return getattr(cast, ASSIGNMENT[key])


def live_feed(initiative, cast, *, name="Claims events", days_ago=(0, 0, 3)):
    """A live feed whose API deliveries brought one fresh observation on each of `days_ago`
    (0 is today), recorded as the ingestion records them."""
    feed, _ = metric_services.create_feed(
        initiative=initiative,
        user=cast.pm,
        name=name,
        kind=FeedKind.LIVE,
        owner=cast.delivery_lead,
        freshness_hours=24,
    )
    now = timezone.now()
    for n, days in enumerate(days_ago):
        Observation.objects.create(
            metric=initiative.primary_metric,
            feed=feed,
            cohort="pilot",
            observed_at=now - timedelta(days=days, minutes=n + 1),
            value=88.0,
            ingested_at=now - timedelta(days=days, seconds=n),
        )
        Delivery.objects.create(
            feed=feed,
            at=now - timedelta(days=days, seconds=n),
            source=DeliverySource.API,
            received=1,
            created=1,
            duplicates=0,
            fresh=1,
        )
    return feed


# The review page: what it shows -------------------------------------------------------------
def test_review_page_shows_every_item_with_assignee_state_evidence_and_history(client, items, cast):
    check(items["data_pipeline"], cast.delivery_lead)
    check(items["security_access"], cast.business_owner, evidence_url="")
    review = items["data_pipeline"].review
    client.force_login(cast.viewer)

    body = html(client.get(review_url(review)))

    assert "2 of 6 items checked" in body
    for key, item in items.items():
        part = block(body, item)
        assert item.template_item.title in part
        assert f"Assigned to <strong>{holder(cast, key)}</strong>" in part
        state = "checked" if key in ("data_pipeline", "security_access") else "not checked"
        assert f'<span class="sr-only">{state}</span>' in part
        assert f"Assigned by {cast.pm} to {holder(cast, key)}" in part
    pipeline = block(body, items["data_pipeline"])
    assert EVIDENCE in pipeline
    assert f'<a href="{LINK}"' in pipeline
    assert f"Checked by {cast.delivery_lead} on" in pipeline
    assert f"Checked by {cast.delivery_lead}: “{EVIDENCE}”" in pipeline
    assert LINK not in block(body, items["security_access"])
    assert EVIDENCE not in block(body, items["monitoring_alerting"])


def test_review_page_shows_an_unassigned_item_as_unassigned(client, review, cast):
    client.force_login(cast.viewer)
    body = html(client.get(review_url(review)))
    for item in items_of(review).values():
        assert "Unassigned" in block(body, item)


def test_review_page_shows_the_live_feeds_delivery_record_over_14_days(
    client, initiative, items, cast
):
    live_feed(initiative, cast, days_ago=(0, 0, 3, 20))  # twice today, once 3 days ago, once 20
    metric_services.create_feed(
        initiative=initiative,
        user=cast.pm,
        name="Spreadsheet from March",
        kind=FeedKind.ONE_OFF_EXTRACT,
        owner=cast.delivery_lead,
        freshness_hours=24,
    )
    client.force_login(cast.viewer)

    part = block(
        html(client.get(review_url(items["data_pipeline"].review))), items["data_pipeline"]
    )

    assert "Measured by Gantry" in part
    assert "Claims events: delivered on 2 of 14 days" in part
    assert "Spreadsheet from March" not in part
    cells = re.findall(r'<span class="cell ?(on)?" title="([^"]+)"></span>', part)
    assert len(cells) == 14
    today = timezone.now().date()
    assert [title for on, title in cells if on] == [
        f"{(today - timedelta(days=3)):%-d %b}: 1",
        f"{today:%-d %b}: 2",
    ]
    assert f"{today:%-d %b} 2" in part  # the text alternative


def test_review_page_says_when_no_live_feed_is_registered(client, items, cast):
    client.force_login(cast.viewer)
    part = block(
        html(client.get(review_url(items["data_pipeline"].review))), items["data_pipeline"]
    )
    assert "No live feed is registered." in part


def test_review_page_shows_the_computed_monthly_cost(client, items, cast):
    item = items["cost_per_transaction"]
    check(
        item,
        cast.business_owner,
        cost_per_transaction=Decimal("0.0375"),
        monthly_volume=Decimal("240000"),
        currency="GBP",
    )
    client.force_login(cast.viewer)

    part = block(html(client.get(review_url(item.review))), item)

    assert "Computed by Gantry" in part
    # 0.0375 times 240,000 is 9,000.00
    assert "Monthly running cost: <strong>GBP 9,000.00</strong>" in part
    assert "GBP 0.0375 per transaction × 240,000 transactions a month" in part


def test_review_page_asks_for_the_numbers_before_showing_a_cost(client, items, cast):
    client.force_login(cast.viewer)
    item = items["cost_per_transaction"]
    part = block(html(client.get(review_url(item.review))), item)
    assert "appears once the cost per transaction and the volume are given" in part


@pytest.mark.parametrize("named", [True, False])
def test_review_page_shows_the_operational_owner(client, initiative, items, cast, named):
    if not named:
        Initiative.objects.filter(pk=initiative.pk).update(operational_owner=None)
    client.force_login(cast.viewer)
    item = items["operational_owner"]
    part = block(html(client.get(review_url(item.review))), item)
    if named:
        assert f"Operational owner: <strong>{cast.operational_owner}</strong>" in part
    else:
        assert "No operational owner is named" in part


# The review page: who gets which form -------------------------------------------------------
@pytest.mark.parametrize("who", ["delivery_lead", "business_owner", "operational_owner"])
def test_the_assignee_sees_check_forms_for_their_unchecked_items_only(client, items, cast, who):
    check(items["data_pipeline"], cast.delivery_lead)
    mine = {k for k in ASSIGNMENT if ASSIGNMENT[k] == who}
    client.force_login(getattr(cast, who))

    body = html(client.get(review_url(items["data_pipeline"].review)))

    assert item_actions(body, items, "check") == mine - {"data_pipeline"}
    assert item_actions(body, items, "uncheck") == mine & {"data_pipeline"}
    assert item_actions(body, items, "assign") == set()
    assert WAITING in body


@pytest.mark.parametrize("who", ["pm2", "executive", "other_owner", "viewer"])
def test_people_without_items_see_no_check_forms(client, items, cast, who):
    client.force_login(getattr(cast, who))
    body = html(client.get(review_url(items["data_pipeline"].review)))
    assert item_actions(body, items, "check") == set()
    assert item_actions(body, items, "uncheck") == set()


def test_the_cost_items_check_form_asks_for_the_numbers(client, items, cast):
    client.force_login(cast.business_owner)
    body = html(client.get(review_url(items["data_pipeline"].review)))
    cost = items["cost_per_transaction"]
    assert f'name="c{cost.pk}-cost_per_transaction"' in block(body, cost)
    assert f'name="c{cost.pk}-currency"' in block(body, cost)
    security = items["security_access"]
    assert f'name="c{security.pk}-evidence_text"' in block(body, security)
    assert f'name="c{security.pk}-cost_per_transaction"' not in block(body, security)


def test_a_stakeless_programme_manager_sees_assign_and_decision_forms(client, items, cast):
    review = items["data_pipeline"].review
    client.force_login(cast.pm)

    body = html(client.get(review_url(review)))

    assert item_actions(body, items, "assign") == set(ASSIGNMENT)
    assert item_actions(body, items, "check") == set()
    # Not every item is checked: passing shows what blocks it; failing is offered.
    assert decide_url(review, T.FAIL_REVIEW) in actions(body)
    assert decide_url(review, T.PASS_REVIEW) not in actions(body)
    assert "criteria not met" in body
    assert "6 of 6 items are not checked" in body
    # Each assign form shows the current assignee as chosen.
    pipeline = block(body, items["data_pipeline"])
    assert f'<option value="{cast.delivery_lead.pk}" selected>' in pipeline
    assert f'<option value="{cast.viewer.pk}"' not in pipeline  # viewers hold no items


def test_a_stakeless_programme_manager_sees_the_pass_form_once_everything_is_checked(
    client, complete, cast
):
    review = complete["data_pipeline"].review
    client.force_login(cast.pm)
    body = html(client.get(review_url(review)))
    assert {decide_url(review, T.PASS_REVIEW), decide_url(review, T.FAIL_REVIEW)} <= actions(body)
    assert "criteria not met" not in body


@pytest.mark.parametrize(
    "who", ["executive", "business_owner", "delivery_lead", "operational_owner", "viewer"]
)
def test_nobody_else_sees_assign_or_decision_forms(client, items, cast, who):
    review = items["data_pipeline"].review
    client.force_login(getattr(cast, who))
    body = html(client.get(review_url(review)))
    assert item_actions(body, items, "assign") == set()
    assert not any("/decide/" in action for action in actions(body))
    assert WAITING in body


@pytest.mark.parametrize("outcome", [T.PASS_REVIEW, T.FAIL_REVIEW])
@pytest.mark.parametrize("who", ["pm", "delivery_lead", "viewer"])
def test_a_decided_review_shows_its_decision_and_no_forms(
    client, initiative, complete, cast, outcome, who
):
    review = complete["data_pipeline"].review
    decide(initiative, outcome, cast.pm, "Decided with the whole team in the room.")
    client.force_login(getattr(cast, who))

    body = html(client.get(review_url(review)))

    assert actions(body) <= {"/accounts/logout/"}
    label = "Passed" if outcome == T.PASS_REVIEW else "Failed"
    assert f'<span class="outcome outcome-{label.lower()}">{label}</span>' in body
    assert "Decided with the whole team in the room." in body
    assert f"by {cast.pm}" in body


def test_review_page_of_another_initiative_or_unknown_review_is_404(client, review, cast):
    other = InitiativeFactory(framed=True)
    client.force_login(cast.viewer)
    assert client.get(f"/initiatives/{other.slug}/reviews/{review.pk}/").status_code == 404
    assert client.get(f"/initiatives/{review.initiative.slug}/reviews/999999/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, review):
    for url in (review_url(review), "/my-work/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


# Actions posted from the review page --------------------------------------------------------
def test_checking_from_the_page_records_the_evidence_and_returns_to_the_item(client, items, cast):
    item = items["data_pipeline"]
    client.force_login(cast.delivery_lead)
    response = client.post(
        item_url(item, "check"),
        {
            f"c{item.pk}-evidence_text": "Retries with backoff; pages the data on-call.",
            f"c{item.pk}-evidence_url": "wiki.example.internal/pipeline",
            f"c{item.pk}-version": item.version,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{review_url(item.review)}#item-{item.pk}"
    row = fresh(item)
    assert row.checked
    assert row.evidence_url == "https://wiki.example.internal/pipeline"


def test_checking_the_cost_item_from_the_page_computes_the_monthly_cost(client, items, cast):
    item = items["cost_per_transaction"]
    client.force_login(cast.business_owner)
    client.post(
        item_url(item, "check"),
        {
            f"c{item.pk}-evidence_text": "Inference and review time, from the vendor quote.",
            f"c{item.pk}-cost_per_transaction": "0.012",
            f"c{item.pk}-monthly_volume": "85000",
            f"c{item.pk}-currency": "eur",
            f"c{item.pk}-version": item.version,
        },
    )
    row = fresh(item)
    assert row.monthly_cost == Decimal("1020.00")  # 0.012 times 85,000
    assert row.currency == "EUR"


@pytest.mark.parametrize(
    ("key", "fields", "error"),
    [
        ("data_pipeline", {}, "needs evidence"),
        ("cost_per_transaction", {"currency": "EUR"}, "Give the cost per transaction."),
        (
            "cost_per_transaction",
            {"cost_per_transaction": "0.1", "monthly_volume": "10", "currency": "E1"},
            "three-letter code",
        ),
        ("cost_per_transaction", {"cost_per_transaction": "-1"}, "greater than or equal to 0"),
    ],
    ids=["no-evidence", "no-cost", "bad-currency", "negative-cost"],
)
def test_a_refused_check_from_the_page_answers_400_with_the_reason_and_changes_nothing(
    client, items, cast, key, fields, error
):
    item = items[key]
    data = {f"c{item.pk}-version": item.version}
    if key != "data_pipeline":
        data[f"c{item.pk}-evidence_text"] = EVIDENCE
    data.update({f"c{item.pk}-{name}": value for name, value in fields.items()})
    client.force_login(holder(cast, key))

    response = client.post(item_url(item, "check"), data)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not fresh(item).checked
    assert not fresh(item).events.filter(action="checked").exists()


def test_passing_an_incomplete_review_from_the_page_answers_409_and_says_why(
    client, initiative, items, cast
):
    review = items["data_pipeline"].review
    client.force_login(cast.pm)
    response = client.post(
        decide_url(review, T.PASS_REVIEW),
        {
            "pass_review-rationale": "Looks fine.",
            "pass_review-expected_stage": Stage.READINESS_REVIEW,
        },
    )
    assert response.status_code == 409
    assert "Readiness checklist complete" in response.content.decode()
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW


def test_failing_from_the_page_needs_a_rationale(client, initiative, items, cast):
    review = items["data_pipeline"].review
    client.force_login(cast.pm)
    response = client.post(
        decide_url(review, T.FAIL_REVIEW),
        {"fail_review-rationale": "  ", "fail_review-expected_stage": Stage.READINESS_REVIEW},
    )
    assert response.status_code == 400
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW


def test_failing_from_the_page_returns_to_the_review(client, initiative, items, cast):
    review = items["data_pipeline"].review
    client.force_login(cast.pm)
    response = client.post(
        decide_url(review, T.FAIL_REVIEW),
        {
            "fail_review-rationale": "No fallback yet.",
            "fail_review-expected_stage": "readiness_review",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == review_url(review)
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.FAILED
    assert review.decision.rationale == "No fallback yet."


def test_a_decision_form_from_a_stale_page_answers_409(client, initiative, complete, cast):
    review = complete["data_pipeline"].review
    decide(initiative, T.PASS_REVIEW, cast.pm2)
    client.force_login(cast.pm)
    response = client.post(
        decide_url(review, T.FAIL_REVIEW),
        {"fail_review-rationale": "Not ready.", "fail_review-expected_stage": "readiness_review"},
    )
    assert response.status_code == 409
    assert "Reload" in response.content.decode()
    initiative.refresh_from_db()
    assert initiative.stage == Stage.NARROW_LAUNCH


def test_a_decision_posted_to_an_earlier_review_answers_409_and_leaves_the_open_one(
    client, initiative, complete, cast
):
    earlier = complete["data_pipeline"].review
    services.uncheck(item=complete["monitoring_alerting"], user=cast.delivery_lead)
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    current = submit_for_review(initiative, user=cast.pm)
    client.force_login(cast.pm)

    response = client.post(
        decide_url(earlier, T.FAIL_REVIEW),
        {"fail_review-rationale": "Old page.", "fail_review-expected_stage": "readiness_review"},
    )

    assert response.status_code == 409
    assert "already decided" in response.content.decode()
    current.refresh_from_db()
    assert current.outcome == ReviewOutcome.OPEN
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW


def test_only_pass_and_fail_are_decided_from_the_review_page(client, items, cast):
    client.force_login(cast.pm)
    response = client.post(decide_url(items["data_pipeline"].review, T.WIDEN), {})
    assert response.status_code == 404


# The initiative page ------------------------------------------------------------------------
def test_the_initiative_page_links_to_the_current_and_past_reviews(client, initiative, items, cast):
    first = items["data_pipeline"].review
    check(items["data_pipeline"], cast.delivery_lead)
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    second = submit_for_review(initiative, user=cast.pm)
    client.force_login(cast.viewer)

    body = html(client.get(initiative.get_absolute_url()))

    section = body[body.index('id="reviews-h"') :]
    assert f'href="{review_url(first)}"' in section
    assert f'href="{review_url(second)}"' in section
    assert '<span class="outcome outcome-failed">Failed</span>' in section
    assert '<span class="outcome outcome-open">Open</span>' in section
    assert "1/6 checked" in section and "0/6 checked" in section
    assert "Pre-launch work" in section
    assert items["monitoring_alerting"].template_item.title in section


def test_the_review_page_lists_every_review_of_the_initiative(client, initiative, items, cast):
    first = items["data_pipeline"].review
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    second = submit_for_review(initiative, user=cast.pm)
    client.force_login(cast.viewer)
    for review in (first, second):
        body = html(client.get(review_url(review)))
        assert f'href="{review_url(first)}"' in body
        assert f'href="{review_url(second)}"' in body


# My work ------------------------------------------------------------------------------------
@pytest.fixture
def workload(initiative, items, cast):
    """The delivery lead's work across three initiatives.

    - Claims triage (open review): data pipeline checked, monitoring unchecked.
    - Fraud triage (failed review): two open work items, due in 10 and 3 days.
    - Invoice matching (failed review): its work item of theirs is done.
    Other people hold items and work in all three.
    """
    check(items["data_pipeline"], cast.delivery_lead)
    failed = {}
    for title in ("Fraud triage", "Invoice matching"):
        other = InitiativeFactory(
            framed=True,
            title=title,
            business_owner=cast.business_owner,
            delivery_lead=cast.delivery_lead,
            operational_owner=cast.operational_owner,
        )
        review = submit_for_review(other, user=cast.pm)
        for key, item in items_of(review).items():
            services.assign(item=item, assignee=holder(cast, key), user=cast.pm)
        decide(other, T.FAIL_REVIEW, cast.pm)
        failed[title] = items_of(review)
    today = timezone.localdate()
    fraud = failed["Fraud triage"]
    PreLaunchWorkItem.objects.filter(review_item=fraud["data_pipeline"]).update(
        due_date=today + timedelta(days=10)
    )
    PreLaunchWorkItem.objects.filter(review_item=fraud["monitoring_alerting"]).update(
        due_date=today + timedelta(days=3)
    )
    invoice = failed["Invoice matching"]
    for key in ("data_pipeline", "monitoring_alerting"):
        services.complete_work_item(
            work_item=PreLaunchWorkItem.objects.get(review_item=invoice[key]),
            user=cast.pm,
            evidence_text=DONE,
        )
    return items, fraud


def test_my_work_lists_my_unchecked_items_in_open_reviews_and_my_open_work_soonest_first(
    client, workload, cast
):
    items, _ = workload
    waiting = items["monitoring_alerting"]
    client.force_login(cast.delivery_lead)

    body = html(client.get("/my-work/"))

    checklist = body[body.index("Readiness checklist items") :]
    links = re.findall(r'<a href="(/initiatives/[^"]+#item-\d+)">', checklist)
    assert links == [f"{review_url(waiting.review)}#item-{waiting.pk}"]
    work = body[body.index("Pre-launch work items") : body.index("Readiness checklist items")]
    titles = re.findall(r"<strong>([^<]+)</strong> · <a", work)
    assert titles == ["Monitoring and alerting", "Data pipeline reliability"]
    assert work.count("Fraud triage") == 2
    assert "Invoice matching" not in work
    assert 'aria-label="3 open">3</span>' in body


def test_my_work_shows_nothing_of_other_peoples_work(client, workload, cast):
    client.force_login(cast.other_owner)
    body = html(client.get("/my-work/"))
    assert "No checklist item waits for you." in body
    assert "No open pre-launch work." in body
    assert "open</span>" not in body


def test_the_nav_counts_open_items_and_work_on_every_page(client, workload, cast):
    client.force_login(cast.business_owner)
    # Claims triage: security and cost open; Fraud and Invoice: two work items each.
    body = html(client.get("/initiatives/"))
    assert 'aria-label="6 open">6</span>' in body


# Query counts -------------------------------------------------------------------------------
def queries(client, url) -> int:
    client.get(url)  # warm up what is cached per process
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def busy_review(cast, *, title, past_reviews, rounds, feeds):
    """An initiative in readiness review with history: past failed reviews, items assigned
    (extras to the delivery lead) and checked and unchecked `rounds` times, live feeds."""
    initiative = InitiativeFactory(
        framed=True,
        title=title,
        business_owner=cast.business_owner,
        delivery_lead=cast.delivery_lead,
        operational_owner=cast.operational_owner,
        narrow_audience="Motor claims team",
    )
    for n in range(feeds):
        live_feed(initiative, cast, name=f"Feed {n}", days_ago=range(n + 1))
    for _ in range(past_reviews + 1):
        if initiative.stage == Stage.READINESS_REVIEW:
            decide(initiative, T.FAIL_REVIEW, cast.pm)
        review = submit_for_review(initiative, user=cast.pm)
        items = items_of(review)
        for key, item in items.items():
            who = holder(cast, key) if key in ASSIGNMENT else cast.delivery_lead
            services.assign(item=item, assignee=who, user=cast.pm)
            for _ in range(rounds):
                check(fresh(item), who)
                services.uncheck(item=fresh(item), user=who)
        cost = fresh(items["cost_per_transaction"])
        check(cost, cast.business_owner)
    return review


@pytest.mark.parametrize("who", ["pm", "delivery_lead", "viewer"])
def test_review_page_queries_do_not_grow_with_items_events_feeds_or_reviews(client, cast, who):
    small = busy_review(cast, title="Small", past_reviews=1, rounds=0, feeds=1)
    new_version(*[f"Extra check {n}" for n in range(8)])
    large = busy_review(cast, title="Large", past_reviews=3, rounds=3, feeds=3)
    assert large.items.count() == 14
    client.force_login(getattr(cast, who))

    assert queries(client, review_url(large)) == queries(client, review_url(small))


def test_initiative_page_queries_do_not_grow_with_reviews_or_work(client, cast):
    small = busy_review(cast, title="Small", past_reviews=1, rounds=0, feeds=1)
    large = busy_review(cast, title="Large", past_reviews=4, rounds=0, feeds=1)
    client.force_login(cast.viewer)
    assert queries(client, large.initiative.get_absolute_url()) == queries(
        client, small.initiative.get_absolute_url()
    )


def test_my_work_queries_do_not_grow_with_items_work_or_initiatives(client, cast):
    # The small load: one open item, one open work item, one initiative owned.
    busy_review(cast, title="Only one", past_reviews=1, rounds=0, feeds=0)
    PreLaunchWorkItem.objects.exclude(review_item__template_item__key="data_pipeline").update(
        status=WorkStatus.DONE
    )
    open_review(Initiative.objects.get(title="Only one")).items.exclude(
        template_item__key="data_pipeline"
    ).update(assignee=cast.pm2)
    client.force_login(cast.delivery_lead)
    small = queries(client, "/my-work/")
    assert 'aria-label="2 open">2</span>' in html(client.get("/my-work/"))

    for n in range(3):
        busy_review(cast, title=f"Busy {n}", past_reviews=2, rounds=0, feeds=0)
    assert (
        PreLaunchWorkItem.objects.filter(
            assignee=cast.delivery_lead, status=WorkStatus.OPEN
        ).count()
        > 10
    )

    assert queries(client, "/my-work/") == small


def test_the_review_is_reached_from_the_failing_criterion_and_the_stepper(client, items, cast):
    review = items["data_pipeline"].review
    client.force_login(cast.viewer)
    body = client.get(review.initiative.get_absolute_url()).content.decode()
    url = review.get_absolute_url()
    assert f'<a href="{url}">Open the readiness review</a>' in body
    assert f'<a href="{url}">Readiness review</a>' in body
