"""Checklist items: evidence, numbers, the operational owner, history, closed reviews, and two
people editing the same item at once.

The threaded tests need PostgreSQL (row locks and real concurrent connections); SQLite
serialises writers and cannot show the race, so it skips there (and fails in CI when
GANTRY_REQUIRE_SERVICES=1).
"""

import threading
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from gates import services as gate_services
from gates.stages import Transition as T
from portfolio.models import Initiative, User
from readiness import services
from readiness.models import ItemAction, PreLaunchWorkItem, ReviewItem, ReviewItemEvent
from tests.factories import InitiativeFactory
from tests.readiness.helpers import (
    ASSIGNMENT,
    EVIDENCE,
    LINK,
    check,
    decide,
    fresh,
    item_url,
    items_of,
    snapshot,
    submit_for_review,
)

pytestmark = pytest.mark.django_db

CONFLICT = "Someone else changed this item while you were editing it."


def holder(cast, key):
    return getattr(cast, ASSIGNMENT[key])


# Evidence -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "url"),
    [("", ""), ("   ", ""), ("", "   "), ("\n\t", " ")],
    ids=["nothing", "blank-text", "blank-link", "whitespace-both"],
)
def test_checking_needs_evidence_text_or_link(items, cast, text, url):
    item = items["security_access"]
    before = snapshot(item)
    with pytest.raises(ValidationError) as exc:
        services.check(item=item, user=cast.business_owner, evidence_text=text, evidence_url=url)
    assert "evidence_text" in exc.value.message_dict
    assert snapshot(item) == before


@pytest.mark.parametrize(
    ("text", "url"),
    [(EVIDENCE, ""), ("", LINK), (EVIDENCE, LINK), (f"  {EVIDENCE}  ", f" {LINK} ")],
    ids=["text", "link", "both", "padded"],
)
def test_checking_with_text_or_link_records_it_with_who_and_when(items, cast, text, url):
    item = items["security_access"]
    before = timezone.now()
    services.check(item=item, user=cast.business_owner, evidence_text=text, evidence_url=url)
    row = fresh(item)
    assert row.checked
    assert (row.evidence_text, row.evidence_url) == (text.strip(), url.strip())
    assert row.checked_by == cast.business_owner
    assert before <= row.checked_at <= timezone.now()
    assert row.version == item.version == 3  # made, assigned, checked


# The cost item's numbers --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("numbers", "field"),
    [
        ({"cost_per_transaction": None}, "cost_per_transaction"),
        ({"monthly_volume": None}, "monthly_volume"),
        ({"currency": ""}, "currency"),
        ({"currency": "   "}, "currency"),
        ({"currency": "EU"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "123"}, "currency"),
        ({"currency": "E1R"}, "currency"),
        ({"cost_per_transaction": Decimal("-0.01")}, "cost_per_transaction"),
        ({"monthly_volume": Decimal("-1")}, "monthly_volume"),
    ],
    ids=[
        "no-cost",
        "no-volume",
        "no-currency",
        "blank-currency",
        "two-letters",
        "four-letters",
        "digits",
        "letter-digit-letter",
        "negative-cost",
        "negative-volume",
    ],
)
def test_the_cost_item_needs_cost_volume_and_a_three_letter_currency(items, cast, numbers, field):
    item = items["cost_per_transaction"]
    before = snapshot(item)
    with pytest.raises(ValidationError) as exc:
        check(item, cast.business_owner, **numbers)
    assert field in exc.value.message_dict
    assert snapshot(item) == before


@pytest.mark.parametrize(
    ("cost", "volume", "monthly"),
    [
        ("0.04", "120000", "4800.00"),
        ("0.003750", "2400000", "9000.00"),
        ("0.012345", "1001", "12.36"),  # 12.357345
        ("1.5", "0.5", "0.75"),
        ("0", "500000", "0.00"),
        ("2.25", "0", "0.00"),
    ],
)
def test_monthly_cost_is_cost_per_transaction_times_monthly_volume(
    items, cast, cost, volume, monthly
):
    item = items["cost_per_transaction"]
    check(
        item,
        cast.business_owner,
        cost_per_transaction=Decimal(cost),
        monthly_volume=Decimal(volume),
        currency="eur",
    )
    row = fresh(item)
    assert isinstance(row.monthly_cost, Decimal)
    assert row.monthly_cost == Decimal(monthly)
    assert str(row.monthly_cost) == monthly
    assert (row.cost_per_transaction, row.monthly_volume) == (Decimal(cost), Decimal(volume))
    assert row.currency == "EUR"
    event = row.events.get(action=ItemAction.CHECKED)
    assert event.numbers == {
        "cost_per_transaction": cost,
        "monthly_volume": volume,
        "currency": "EUR",
    }


def test_monthly_cost_is_none_until_both_numbers_are_given(items):
    item = items["cost_per_transaction"]
    assert item.monthly_cost is None
    item.cost_per_transaction = Decimal("0.04")
    assert item.monthly_cost is None


def test_items_that_ask_no_numbers_keep_none(items, cast):
    item = items["security_access"]
    check(item, cast.business_owner, cost_per_transaction=Decimal("1"), monthly_volume=Decimal(2))
    row = fresh(item)
    assert (row.cost_per_transaction, row.monthly_volume, row.currency) == (None, None, "")
    assert row.events.get(action=ItemAction.CHECKED).numbers == {}


# The operational owner item -----------------------------------------------------------------
def test_the_operational_owner_item_needs_the_initiatives_operational_owner(
    initiative, items, cast
):
    Initiative.objects.filter(pk=initiative.pk).update(operational_owner=None)
    item = fresh(items["operational_owner"])
    before = snapshot(item)
    with pytest.raises(ValidationError) as exc:
        check(item, cast.operational_owner)
    assert "operational owner" in " ".join(exc.value.messages)
    assert snapshot(item) == before

    Initiative.objects.filter(pk=initiative.pk).update(operational_owner=cast.pm2)
    check(fresh(item), cast.operational_owner)
    assert fresh(item).checked


# History ------------------------------------------------------------------------------------
def test_every_item_action_writes_an_event_with_who_when_and_the_evidence_then(review, cast):
    item = items_of(review)["cost_per_transaction"]
    start = timezone.now()
    services.assign(item=item, assignee=cast.delivery_lead, user=cast.pm)
    services.assign(item=item, assignee=cast.business_owner, user=cast.pm2)
    check(item, cast.business_owner, evidence_text="First estimate.", evidence_url="")
    services.uncheck(item=item, user=cast.business_owner)
    check(
        item,
        cast.business_owner,
        evidence_text="Vendor quote attached.",
        evidence_url="https://wiki.example.internal/quote",
        cost_per_transaction=Decimal("0.05"),
    )
    services.assign(item=item, assignee=None, user=cast.pm)
    end = timezone.now()

    events = list(ReviewItemEvent.objects.filter(item=item).order_by("at", "id"))
    got = [
        (
            e.action,
            e.user,
            e.assignee,
            e.previous_assignee,
            e.evidence_text,
            e.evidence_url,
            e.numbers,
        )
        for e in events
    ]
    first_numbers = {"cost_per_transaction": "0.04", "monthly_volume": "120000", "currency": "EUR"}
    bo, dl = cast.business_owner, cast.delivery_lead
    assert got == [
        (ItemAction.ASSIGNED, cast.pm, dl, None, "", "", {}),
        (ItemAction.ASSIGNED, cast.pm2, bo, dl, "", "", {}),
        (ItemAction.CHECKED, bo, None, None, "First estimate.", "", first_numbers),
        (ItemAction.UNCHECKED, bo, None, None, "First estimate.", "", {}),
        (
            ItemAction.CHECKED,
            bo,
            None,
            None,
            "Vendor quote attached.",
            "https://wiki.example.internal/quote",
            {**first_numbers, "cost_per_transaction": "0.05"},
        ),
        (ItemAction.UNASSIGNED, cast.pm, None, bo, "", "", {}),
    ]
    times = [e.at for e in events]
    assert times == sorted(times)
    assert start <= times[0] and times[-1] <= end
    row = fresh(item)
    assert row.version == 1 + len(events)
    assert row.assignee is None


def test_unchecking_clears_who_checked_and_keeps_the_evidence(items, cast):
    item = check(items["data_pipeline"], cast.delivery_lead)
    services.uncheck(item=item, user=cast.delivery_lead)
    row = fresh(item)
    assert not row.checked
    assert (row.checked_by, row.checked_at) == (None, None)
    assert (row.evidence_text, row.evidence_url) == (EVIDENCE, LINK)


# A closed review's items cannot change ------------------------------------------------------
@pytest.fixture(params=["passed", "failed"])
def closed(request, initiative, complete, cast):
    """Items of a review just decided (passed, or failed after one item was unchecked)."""
    if request.param == "failed":
        services.uncheck(item=complete["monitoring_alerting"], user=cast.delivery_lead)
        decide(initiative, T.FAIL_REVIEW, cast.pm)
    else:
        decide(initiative, T.PASS_REVIEW, cast.pm)
    return items_of(complete["data_pipeline"].review)


@pytest.mark.parametrize("action", ["check", "uncheck", "assign"])
def test_items_of_a_closed_review_cannot_change(closed, cast, action):
    key = "monitoring_alerting" if action == "check" else "data_pipeline"
    item = closed[key]
    before = snapshot(item)
    with pytest.raises(ValidationError, match="closed"):
        if action == "check":
            check(item, holder(cast, key))
        elif action == "uncheck":
            services.uncheck(item=item, user=holder(cast, key))
        else:
            services.assign(item=item, assignee=cast.pm2, user=cast.pm)
    assert snapshot(item) == before


@pytest.mark.parametrize("action", ["check", "uncheck", "assign"])
def test_items_of_a_closed_review_cannot_change_through_the_page(client, closed, cast, action):
    key = {
        "check": "monitoring_alerting",
        "uncheck": "data_pipeline",
        "assign": "failure_fallback",
    }[action]
    item = closed[key]
    before = snapshot(item)
    user = cast.pm if action == "assign" else holder(cast, key)
    data = {
        "check": {f"c{item.pk}-evidence_text": EVIDENCE, f"c{item.pk}-version": item.version},
        "uncheck": {"version": item.version},
        "assign": {f"a{item.pk}-assignee": cast.pm2.pk, f"a{item.pk}-version": item.version},
    }[action]
    client.force_login(user)
    response = client.post(item_url(item, action), data)
    assert response.status_code == 400
    assert "closed" in response.content.decode()
    assert snapshot(item) == before


def test_an_item_loaded_before_the_review_closed_cannot_change_after(initiative, items, cast):
    # The assignee's copy was loaded while the review was open; then the review failed.
    item = items["data_pipeline"]
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    before = snapshot(item)
    with pytest.raises(ValidationError, match="closed"):
        check(item, cast.delivery_lead)
    assert snapshot(item) == before
    assert not fresh(item).checked


# Two people editing the same item -----------------------------------------------------------
def test_a_write_based_on_an_older_version_raises_conflict_and_the_first_write_survives(
    items, cast
):
    item = items["data_pipeline"]
    loaded = item.version
    check(item, cast.delivery_lead, evidence_text="The first write.")

    stale = fresh(item)  # reloaded, but the form still carries the old version
    with pytest.raises(services.Conflict, match="Reload"):
        check(stale, cast.delivery_lead, evidence_text="The second write.", expected_version=loaded)
    row = fresh(item)
    assert row.evidence_text == "The first write."
    assert row.version == loaded + 1
    assert row.events.filter(action=ItemAction.CHECKED).count() == 1


@pytest.mark.parametrize("second", ["check", "uncheck", "assign"])
def test_a_copy_loaded_before_another_write_raises_conflict(items, cast, second):
    mine = fresh(items["data_pipeline"])
    theirs = fresh(items["data_pipeline"])
    check(theirs, cast.delivery_lead, evidence_text="Theirs.")
    events = ReviewItemEvent.objects.count()

    with pytest.raises(services.Conflict):
        if second == "check":
            check(mine, cast.delivery_lead, evidence_text="Mine.")
        elif second == "uncheck":
            services.uncheck(item=mine, user=cast.delivery_lead)
        else:
            services.assign(item=mine, assignee=cast.pm2, user=cast.pm)
    row = fresh(mine)
    assert (row.checked, row.evidence_text, row.assignee) == (True, "Theirs.", cast.delivery_lead)
    assert ReviewItemEvent.objects.count() == events


def test_the_check_form_of_an_older_version_answers_409_and_keeps_the_first_write(
    client, items, cast
):
    item = items["data_pipeline"]
    loaded = item.version
    services.assign(item=item, assignee=cast.delivery_lead, user=cast.pm2)  # someone else
    client.force_login(cast.delivery_lead)

    response = client.post(
        item_url(item, "check"),
        {f"c{item.pk}-evidence_text": "Mine.", f"c{item.pk}-version": loaded},
    )

    assert response.status_code == 409
    body = response.content.decode()
    assert CONFLICT in body
    assert "Reload the page" in body
    row = fresh(item)
    assert not row.checked and row.evidence_text == ""
    assert row.version == loaded + 1


def test_the_assign_form_of_an_older_version_answers_409_and_keeps_the_first_write(
    client, items, cast
):
    item = items["data_pipeline"]
    loaded = item.version
    services.assign(item=item, assignee=cast.operational_owner, user=cast.pm2)
    client.force_login(cast.pm)

    response = client.post(
        item_url(item, "assign"),
        {f"a{item.pk}-assignee": cast.business_owner.pk, f"a{item.pk}-version": loaded},
    )

    assert response.status_code == 409
    assert CONFLICT in response.content.decode()
    assert fresh(item).assignee == cast.operational_owner


def test_the_uncheck_form_of_an_older_version_answers_409(client, items, cast):
    item = items["data_pipeline"]
    check(item, cast.delivery_lead)
    loaded = fresh(item).version
    services.uncheck(item=item, user=cast.delivery_lead)
    check(item, cast.delivery_lead, evidence_text="Checked again after a fix.")
    client.force_login(cast.delivery_lead)

    response = client.post(item_url(item, "uncheck"), {"version": loaded})

    assert response.status_code == 409
    row = fresh(item)
    assert row.checked and row.evidence_text == "Checked again after a fix."


@pytest.mark.django_db(transaction=True)
def test_two_people_checking_one_item_at_once_one_wins_the_other_gets_conflict(
    require_postgres, cast
):
    initiative = InitiativeFactory(framed=True, operational_owner=cast.operational_owner)
    review = submit_for_review(initiative, user=cast.pm)
    item = items_of(review)["data_pipeline"]
    services.assign(item=item, assignee=cast.delivery_lead, user=cast.pm)
    loaded = fresh(item).version
    barrier = threading.Barrier(2, timeout=20)
    original = services._lock
    outcomes: dict = {}

    def write_together(*args, **kwargs):
        # Both people loaded the same version and are inside their transactions before
        # either locks: the second waits for the first's initiative lock, then finds the
        # version moved on.
        barrier.wait()
        return original(*args, **kwargs)

    def attempt(name: str) -> None:
        try:
            mine = ReviewItem.objects.select_related("template_item", "review__initiative").get(
                pk=item.pk
            )
            services.check(
                item=mine,
                user=User.objects.get(pk=cast.delivery_lead.pk),
                evidence_text=f"Written by {name}.",
                expected_version=loaded,
            )
            outcomes[name] = "written"
        except Exception as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    with mock.patch.object(services, "_lock", write_together):
        threads = [threading.Thread(target=attempt, args=(n,)) for n in ("first", "second")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a write never finished"

    winners = [n for n, o in outcomes.items() if o == "written"]
    losers = [n for n, o in outcomes.items() if isinstance(o, services.Conflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    row = fresh(item)
    assert row.evidence_text == f"Written by {winners[0]}."
    assert row.version == loaded + 1
    assert row.events.filter(action=ItemAction.CHECKED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_checking_while_the_review_is_failed_leaves_a_consistent_outcome(require_postgres, cast):
    # Either the check lands first (the item is checked and becomes no work) or the failure
    # does (the check is refused and the item becomes work): never a checked item with work.
    initiative = InitiativeFactory(framed=True, operational_owner=cast.operational_owner)
    review = submit_for_review(initiative, user=cast.pm)
    item = items_of(review)["data_pipeline"]
    services.assign(item=item, assignee=cast.delivery_lead, user=cast.pm)
    barrier = threading.Barrier(2, timeout=20)
    original_write, original_close = services._lock, services._close
    outcomes: dict = {}

    def write_together(*args, **kwargs):
        barrier.wait()
        return original_write(*args, **kwargs)

    def close_together(*args, **kwargs):
        barrier.wait()
        return original_close(*args, **kwargs)

    def checking() -> None:
        try:
            mine = ReviewItem.objects.select_related("template_item", "review__initiative").get(
                pk=item.pk
            )
            services.check(
                item=mine,
                user=User.objects.get(pk=cast.delivery_lead.pk),
                evidence_text="Checked at the last minute.",
            )
            outcomes["check"] = "written"
        except Exception as exc:
            outcomes["check"] = exc
        finally:
            connection.close()

    def failing() -> None:
        try:
            outcomes["fail"] = gate_services.decide(
                initiative=Initiative.objects.get(pk=initiative.pk),
                transition=T.FAIL_REVIEW,
                user=User.objects.get(pk=cast.pm.pk),
                rationale="Not ready.",
            )
        except Exception as exc:
            outcomes["fail"] = exc
        finally:
            connection.close()

    with (
        mock.patch.object(services, "_lock", write_together),
        mock.patch.object(services, "_close", close_together),
    ):
        threads = [threading.Thread(target=checking), threading.Thread(target=failing)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a write never finished"

    assert not isinstance(outcomes["fail"], Exception), outcomes
    row = fresh(item)
    has_work = PreLaunchWorkItem.objects.filter(review_item=item).exists()
    if outcomes["check"] == "written":
        assert row.checked and not has_work
    else:
        assert isinstance(outcomes["check"], ValidationError), outcomes
        assert not row.checked and has_work
