"""Budget requests are heard: the sponsor learns of a request, the people it concerns of the
decision, and nobody is told of what they did themselves."""

from datetime import date

import pytest

from notifications.models import Kind, Notification
from portfolio.roles import Role
from tests.factories import UserFactory
from value import services

pytestmark = pytest.mark.django_db


def _ask(initiative, user, answerable):
    return services.request_budget(
        initiative=initiative,
        user=user,
        values={
            "kind": "run",
            "amount": "18000",
            "currency": "EUR",
            "starts_on": date(2027, 1, 1),
            "ends_on": date(2027, 12, 31),
            "purpose": "Hosting and on-call.",
            "answerable": answerable,
        },
    )


def _heard(kind):
    return {
        (n.recipient.username, n.url)
        for n in Notification.objects.filter(kind=kind).select_related("recipient")
    }


def test_the_sponsor_hears_of_a_request_and_the_owners_of_its_decision(launched, owner, sponsor):
    answerable = UserFactory(username="ops", role=Role.OWNER)
    made = _ask(launched, owner, answerable)

    url = made.get_absolute_url()
    assert _heard(Kind.BUDGET_REQUESTED) == {("sponsor", url)}
    note = Notification.objects.get(kind=Kind.BUDGET_REQUESTED)
    assert "awaits your decision" in note.title and "EUR 18,000.00" in note.body

    services.decide(request=made, user=sponsor, outcome="approved", rationale="Pays its way.")

    # The requester (the business owner) and the person answerable; never the sponsor.
    assert _heard(Kind.BUDGET_DECIDED) == {("owner", url), ("ops", url)}
    assert "approved" in Notification.objects.filter(kind=Kind.BUDGET_DECIDED).first().title


def test_a_request_by_the_sponsor_themselves_is_not_announced_to_them(launched, sponsor):
    manager = UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    launched.sponsor = manager
    launched.save(update_fields=["sponsor"])

    _ask(launched, manager, manager)

    assert _heard(Kind.BUDGET_REQUESTED) == set()
