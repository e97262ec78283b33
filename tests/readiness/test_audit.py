"""Every readiness write is sealed in the initiative's audit chain, and its rows stay put.

Assigning, unassigning, checking, unchecking and completing pre-launch work each append one
entry (kind, actor, a sentence a person reads) sealing the event row written in the same
transaction; a refused action appends none. The event rows are append-only, and
`gates.audit.verify` finds any that were changed behind the application's back.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from gates import audit
from gates.models import ImmutableError
from gates.stages import Transition as T
from readiness import services
from readiness.models import (
    ItemAction,
    PreLaunchWorkItem,
    ReviewItemEvent,
    WorkItemAction,
    WorkItemEvent,
)
from tests.readiness.helpers import check, decide, fresh

DONE = "Fixed and verified in the runbook."  # the evidence work is closed with

pytestmark = pytest.mark.django_db


def entries(initiative):
    return list(initiative.audit_entries.order_by("seq"))


def act(action: str, items, cast):
    """Do `action` once on the review of the `items` fixture; return (event row, summary)."""
    if action == "assign":
        item = items["data_pipeline"]
        services.assign(item=item, assignee=cast.business_owner, user=cast.pm)
        summary = "“Data pipeline reliability” assigned to Ada Lovelace (was Grace Hopper) by "
        return item, summary + "Priya Menon", cast.pm
    if action == "unassign":
        item = items["failure_fallback"]
        services.unassign(item=item, user=cast.pm2)
        summary = "“Failure and fallback behaviour” unassigned from Olu Adeyemi by Tomas Novak"
        return item, summary, cast.pm2
    item = items["monitoring_alerting"]
    if action == "check":
        check(item, cast.delivery_lead)
        return item, "“Monitoring and alerting” checked by Grace Hopper", cast.delivery_lead
    check(item, cast.delivery_lead)
    services.uncheck(item=fresh(item), user=cast.delivery_lead)
    return item, "“Monitoring and alerting” unchecked by Grace Hopper", cast.delivery_lead


@pytest.mark.parametrize("action", ["assign", "unassign", "check", "uncheck"])
def test_each_item_action_appends_one_entry_sealing_its_event(initiative, items, cast, action):
    before = len(entries(initiative))
    item, summary, actor = act(action, items, cast)
    after = entries(initiative)

    added = after[before:]
    if action == "uncheck":
        added = added[1:]  # the check it undoes comes first
    assert len(added) == 1
    entry = added[0]
    event = ReviewItemEvent.objects.filter(item=item).latest("id")
    assert (entry.kind, entry.summary, entry.actor) == ("review_event", summary, actor)
    assert (entry.source, entry.source_id) == ("readiness.reviewitemevent", event.pk)
    assert entry.at == event.at
    assert entry.payload["action"] == event.action
    assert entry.seq == after[-1].seq == len(after)


def test_the_entry_carries_the_evidence_and_numbers_checked(initiative, items, cast):
    check(items["cost_per_transaction"], cast.business_owner, evidence_text="Vendor quote.")
    payload = entries(initiative)[-1].payload
    assert payload["evidence_text"] == "Vendor quote."
    assert payload["numbers"] == {
        "cost_per_transaction": "0.04",
        "monthly_volume": "120000",
        "currency": "EUR",
    }


def test_completing_work_appends_one_work_item_entry_once(initiative, items, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    work = PreLaunchWorkItem.objects.get(review_item=items["data_pipeline"])
    before = len(entries(initiative))

    services.complete_work_item(work_item=work, user=cast.delivery_lead, evidence_text=DONE)
    services.complete_work_item(
        work_item=work, user=cast.pm, evidence_text=DONE
    )  # already done: nothing more

    added = entries(initiative)[before:]
    assert len(added) == 1
    event = WorkItemEvent.objects.get(work_item=work)
    assert (event.action, event.user) == (WorkItemAction.DONE, cast.delivery_lead)
    assert (added[0].kind, added[0].source, added[0].source_id) == (
        "work_item",
        "readiness.workitemevent",
        event.pk,
    )
    assert added[0].summary == "Pre-launch work “Data pipeline reliability” done by Grace Hopper"
    assert added[0].actor == cast.delivery_lead


@pytest.mark.parametrize(
    "refused",
    ["not_the_assignee", "stale_version", "no_evidence", "leaves_nobody", "not_assigned"],
)
def test_a_refused_action_appends_nothing(initiative, items, cast, refused):
    before = len(entries(initiative))
    events = ReviewItemEvent.objects.count()
    with pytest.raises((PermissionDenied, ValidationError, services.Conflict)):
        if refused == "not_the_assignee":
            check(items["data_pipeline"], cast.business_owner)
        elif refused == "stale_version":
            services.assign(
                item=items["data_pipeline"],
                assignee=cast.pm2,
                user=cast.pm,
                expected_version=items["data_pipeline"].version - 1,
            )
        elif refused == "no_evidence":
            services.check(item=items["data_pipeline"], user=cast.delivery_lead)
        elif refused == "leaves_nobody":
            services.assign(item=items["security_access"], assignee=cast.pm2, user=cast.pm)
            before, events = len(entries(initiative)), ReviewItemEvent.objects.count()
            services.assign(item=fresh(items["data_pipeline"]), assignee=cast.pm, user=cast.pm)
        else:
            services.unassign(item=items["data_pipeline"], user=cast.pm)
            before, events = len(entries(initiative)), ReviewItemEvent.objects.count()
            services.unassign(item=fresh(items["data_pipeline"]), user=cast.pm)
    assert len(entries(initiative)) == before
    assert ReviewItemEvent.objects.count() == events


def test_the_chain_verifies_after_a_review_worked_through(initiative, items, cast):
    pipeline, monitoring = items["data_pipeline"], items["monitoring_alerting"]
    services.assign(item=pipeline, assignee=cast.business_owner, user=cast.pm)
    services.unassign(item=fresh(pipeline), user=cast.pm2)
    services.assign(item=fresh(pipeline), assignee=cast.delivery_lead, user=cast.pm)
    check(fresh(pipeline), cast.delivery_lead)
    check(monitoring, cast.delivery_lead)
    services.uncheck(item=fresh(monitoring), user=cast.delivery_lead)
    services.assign(item=items["security_access"], assignee=cast.pm2, user=cast.pm)
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    work = PreLaunchWorkItem.objects.get(review_item=monitoring)
    services.complete_work_item(work_item=work, user=cast.delivery_lead, evidence_text=DONE)

    count, breaks = audit.verify([initiative.pk])

    assert breaks == []
    kinds = [e.kind for e in entries(initiative)]
    assert count == len(kinds)
    # Six assignments by the fixture, then seven item actions, the decision and the work.
    assert kinds.count("review_event") == 6 + 7
    assert kinds[-1] == "work_item"


def test_verify_finds_an_item_event_changed_behind_the_applications_back(initiative, items, cast):
    check(items["data_pipeline"], cast.delivery_lead, evidence_text="The real evidence.")
    event = ReviewItemEvent.objects.filter(action=ItemAction.CHECKED).latest("id")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE readiness_reviewitemevent SET evidence_text = %s WHERE id = %s",
            ["Rewritten later.", event.pk],
        )

    _, breaks = audit.verify([initiative.pk])

    assert len(breaks) == 1
    assert f"readiness.reviewitemevent row {event.pk} was changed" in breaks[0].problem


def test_verify_finds_an_item_event_nobody_sealed(initiative, items, cast):
    item = items["data_pipeline"]
    ReviewItemEvent.objects.create(item=item, action=ItemAction.CHECKED, user=cast.delivery_lead,
                                   at=item.review.opened_at)  # fmt: skip
    _, breaks = audit.verify([initiative.pk])
    assert len(breaks) == 1
    assert "was never sealed" in breaks[0].problem


# Append-only --------------------------------------------------------------------------------
def test_item_events_cannot_be_changed_or_deleted(items):
    event = ReviewItemEvent.objects.filter(item=items["data_pipeline"]).first()
    event.evidence_text = "Changed."
    with pytest.raises(ImmutableError):
        event.save()
    with pytest.raises(ImmutableError):
        event.delete()
    with pytest.raises(ImmutableError):
        ReviewItemEvent.objects.filter(pk=event.pk).update(evidence_text="Changed.")
    with pytest.raises(ImmutableError):
        ReviewItemEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(ImmutableError):
        items["data_pipeline"].events.all().delete()
    assert ReviewItemEvent.objects.get(pk=event.pk).evidence_text == ""


def test_work_item_events_cannot_be_changed_or_deleted(initiative, items, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    work = PreLaunchWorkItem.objects.get(review_item=items["data_pipeline"])
    services.complete_work_item(work_item=work, user=cast.pm, evidence_text=DONE)
    event = WorkItemEvent.objects.get(work_item=work)
    with pytest.raises(ImmutableError):
        event.save()
    with pytest.raises(ImmutableError):
        WorkItemEvent.objects.filter(pk=event.pk).update(user=cast.pm2)
    with pytest.raises(ImmutableError):
        work.events.all().delete()
