"""Item writes racing gate decisions, on real connections: a review never passes with an
unchecked item, and no write lands on a decided review.

Every item write locks the initiative first (gates.locks), the lock `decide` holds while it
evaluates the gate and records the decision. These tests force each interleaving: one
connection holds the lock, the other is shown to wait for it (PostgreSQL reports the
waiting backend in pg_stat_activity), then the first finishes.

They need PostgreSQL (row locks and concurrent connections); SQLite serialises writers and
cannot show the race, so they skip there (and fail in CI when GANTRY_REQUIRE_SERVICES=1).
"""

import threading
import time
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django_fsm.signals import pre_transition

from gates import services as gate_services
from gates.locks import lock_initiative
from gates.services import GateRefused
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative, User
from readiness import services
from readiness.models import ReadinessReview, ReviewItem, ReviewOutcome
from tests.factories import InitiativeFactory
from tests.readiness.helpers import ASSIGNMENT, check, items_of, submit_for_review

pytestmark = pytest.mark.django_db(transaction=True)

PATIENCE = 20  # seconds any one step may take before the test gives up


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def until_blocked_or_done(pid_box: dict, done: threading.Event) -> bool:
    """Wait until the other connection waits for a lock (True) or has finished (False)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if done.is_set():
            return False
        if "pid" in pid_box and waiting_for_a_lock(pid_box["pid"]):
            return True
        time.sleep(0.02)
    raise AssertionError("the other connection neither waited for a lock nor finished")


def in_thread(target, outcomes: dict, name: str, pid_box: dict, done: threading.Event):
    def run():
        try:
            pid_box["pid"] = backend_pid()
            outcomes[name] = target()
        except Exception as exc:
            outcomes[name] = exc
        finally:
            done.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def ready(require_postgres, cast):
    """An initiative in readiness review with every item assigned as ASSIGNMENT says and
    checked: pass_review's criteria hold."""
    initiative = InitiativeFactory(
        framed=True,
        business_owner=cast.business_owner,
        delivery_lead=cast.delivery_lead,
        operational_owner=cast.operational_owner,
        narrow_audience="Motor claims team",
    )
    review = submit_for_review(initiative, user=cast.pm)
    for key, item in items_of(review).items():
        who = getattr(cast, ASSIGNMENT[key])
        services.assign(item=item, assignee=who, user=cast.pm)
        check(items_of(review)[key], who)
    return initiative, items_of(review)


def unchecking(item_pk: int, user_pk: int):
    def run():
        item = ReviewItem.objects.select_related("template_item", "review__initiative").get(
            pk=item_pk
        )
        services.uncheck(item=item, user=User.objects.get(pk=user_pk))
        return "unchecked"

    return run


def passing(initiative_pk: int, user_pk: int):
    def run():
        return gate_services.decide(
            initiative=Initiative.objects.get(pk=initiative_pk),
            transition=T.PASS_REVIEW,
            user=User.objects.get(pk=user_pk),
            rationale="Every item is checked.",
        )

    return run


def consistent(initiative) -> tuple[str, bool]:
    """(the review's outcome, whether every item is checked)"""
    review = ReadinessReview.objects.filter(initiative=initiative).latest("opened_at")
    return review.outcome, not review.items.filter(checked=False).exists()


def test_an_uncheck_waits_while_another_connection_holds_the_initiative_lock(ready, cast):
    initiative, items = ready
    item = items["monitoring_alerting"]
    outcomes, pid_box, done = {}, {}, threading.Event()

    with transaction.atomic():
        lock_initiative(initiative.pk)
        thread = in_thread(
            unchecking(item.pk, cast.delivery_lead.pk), outcomes, "uncheck", pid_box, done
        )
        assert until_blocked_or_done(pid_box, done), outcomes
        # Still waiting, and nothing written while this connection holds the lock.
        assert ReviewItem.objects.get(pk=item.pk).checked
    thread.join(PATIENCE)
    assert not thread.is_alive()
    assert outcomes == {"uncheck": "unchecked"}
    assert not ReviewItem.objects.get(pk=item.pk).checked


def test_pass_review_holding_the_lock_makes_a_racing_uncheck_find_the_review_closed(ready, cast):
    initiative, items = ready
    item = items["monitoring_alerting"]
    outcomes, pid_box, done = {}, {}, threading.Event()
    deciding, blocked = threading.Event(), {}

    def while_deciding(sender, instance, name, **kwargs):
        # Inside decide's transaction, after it locked the initiative and evaluated the gate:
        # the uncheck starts now and must wait for the decision to commit.
        if sender is Initiative and name == T.PASS_REVIEW:
            deciding.set()
            blocked["uncheck"] = until_blocked_or_done(pid_box, done)

    uncheck = unchecking(item.pk, cast.delivery_lead.pk)

    def uncheck_once_deciding():
        assert deciding.wait(PATIENCE)
        return uncheck()

    pre_transition.connect(while_deciding, dispatch_uid="test-pass-vs-uncheck")
    try:
        thread = in_thread(uncheck_once_deciding, outcomes, "uncheck", pid_box, done)
        decision = passing(initiative.pk, cast.pm.pk)()
        thread.join(PATIENCE)
    finally:
        pre_transition.disconnect(dispatch_uid="test-pass-vs-uncheck")

    assert not thread.is_alive()
    assert blocked == {"uncheck": True}, f"the uncheck did not wait for the decision: {outcomes}"
    assert decision.transition == T.PASS_REVIEW
    assert isinstance(outcomes["uncheck"], ValidationError), outcomes
    assert "closed" in " ".join(outcomes["uncheck"].messages)
    assert consistent(initiative) == (ReviewOutcome.PASSED, True)


def test_an_uncheck_holding_the_lock_makes_a_racing_pass_review_refuse(ready, cast):
    initiative, items = ready
    item = items["monitoring_alerting"]
    outcomes, pid_box, done = {}, {}, threading.Event()
    blocked = {}
    original_lock = services._lock

    def lock_then_let_the_decision_run(*args, **kwargs):
        # The uncheck holds the initiative lock; the decision starts now and must wait.
        result = original_lock(*args, **kwargs)
        decision = in_thread(passing(initiative.pk, cast.pm.pk), outcomes, "pass", pid_box, done)
        blocked["pass"] = until_blocked_or_done(pid_box, done)
        blocked["thread"] = decision
        return result

    user = User.objects.get(pk=cast.delivery_lead.pk)
    mine = ReviewItem.objects.select_related("template_item", "review__initiative").get(pk=item.pk)
    with mock.patch.object(services, "_lock", lock_then_let_the_decision_run):
        services.uncheck(item=mine, user=user)
    blocked["thread"].join(PATIENCE)

    assert not blocked["thread"].is_alive()
    assert blocked["pass"] is True, "the decision did not wait for the uncheck"
    assert isinstance(outcomes["pass"], GateRefused), outcomes
    assert "Readiness checklist complete" in str(outcomes["pass"])
    assert consistent(initiative) == (ReviewOutcome.OPEN, False)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW


def test_two_managers_assigning_each_other_at_once_cannot_both_succeed(require_postgres, cast):
    # Each may decide when the other's assignment starts; whoever writes second has just been
    # given an item (a stake) and is refused under the lock. Without it both could succeed and
    # leave nobody to decide the review, without either being asked to confirm it.
    initiative = InitiativeFactory(framed=True, operational_owner=cast.operational_owner)
    items = items_of(submit_for_review(initiative, user=cast.pm))
    barrier = threading.Barrier(2, timeout=PATIENCE)
    original_lock = services._lock
    outcomes: dict = {}

    def lock_together(*args, **kwargs):
        barrier.wait()
        return original_lock(*args, **kwargs)

    def attempt(name, key, user_pk, assignee_pk):
        try:
            item = ReviewItem.objects.select_related("template_item", "review__initiative").get(
                pk=items[key].pk
            )
            services.assign(
                item=item,
                assignee=User.objects.get(pk=assignee_pk),
                user=User.objects.get(pk=user_pk),
            )
            outcomes[name] = "assigned"
        except Exception as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    with mock.patch.object(services, "_lock", lock_together):
        threads = [
            threading.Thread(target=attempt, args=("pm", "data_pipeline", cast.pm.pk, cast.pm2.pk)),
            threading.Thread(
                target=attempt, args=("pm2", "security_access", cast.pm2.pk, cast.pm.pk)
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE * 2)
    assert not any(thread.is_alive() for thread in threads)

    assert list(outcomes.values()).count("assigned") == 1, outcomes
    refused = next(o for o in outcomes.values() if o != "assigned")
    assert isinstance(refused, PermissionDenied), outcomes
    held = ReviewItem.objects.filter(review__initiative=initiative, assignee__isnull=False)
    assert held.count() == 1
