"""Budget decisions racing each other and a change of sponsor, on real connections."""

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from gates.locks import lock_initiative
from portfolio.models import Initiative, User
from portfolio.roles import Role
from tests.factories import UserFactory
from tests.readiness.test_concurrency import in_thread, until_blocked_or_done
from tests.value.test_budget import request
from value import services
from value.models import BudgetDecision, BudgetLine, BudgetRequest, Outcome

pytestmark = pytest.mark.django_db(transaction=True)


def deciding(request_pk: int, user_pk: int, outcome=Outcome.APPROVED):
    def run():
        return services.decide(
            request=BudgetRequest.objects.select_related("initiative").get(pk=request_pk),
            user=User.objects.get(pk=user_pk),
            outcome=outcome,
            rationale="Decided in a race.",
        )

    return run


def test_two_decisions_of_one_request_record_one(require_postgres, launched, owner, sponsor):
    made = request(launched, owner)
    outcomes, pid_box, done = {}, {}, threading.Event()
    with transaction.atomic():
        lock_initiative(launched.pk)
        thread = in_thread(deciding(made.pk, sponsor.pk), outcomes, "first", pid_box, done)
        assert until_blocked_or_done(pid_box, done)  # the decision waits for the lock
        # Meanwhile the same sponsor's second click is decided first.
        services.decide(request=made, user=sponsor, outcome=Outcome.REJECTED, rationale="Not now.")
    thread.join(timeout=30)

    assert isinstance(outcomes["first"], ValidationError)
    assert BudgetDecision.objects.get().outcome == Outcome.REJECTED
    assert not BudgetLine.objects.exists()


def test_a_sponsor_replaced_mid_decision_decides_nothing(
    require_postgres, launched, owner, sponsor
):
    made = request(launched, owner)
    successor = UserFactory(role=Role.EXECUTIVE)
    outcomes, pid_box, done = {}, {}, threading.Event()
    with transaction.atomic():
        held = lock_initiative(launched.pk)
        thread = in_thread(deciding(made.pk, sponsor.pk), outcomes, "old", pid_box, done)
        assert until_blocked_or_done(pid_box, done)
        Initiative.objects.filter(pk=held.pk).update(sponsor=successor)
    thread.join(timeout=30)

    assert isinstance(outcomes["old"], PermissionDenied)
    assert not BudgetDecision.objects.exists()
