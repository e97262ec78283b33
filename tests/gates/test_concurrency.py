"""Two people deciding the same gate at once: one decision is recorded, the other is told.

The threaded test needs PostgreSQL (row locks and real concurrent connections); SQLite
serialises writers and cannot show the race, so it skips there (and fails in CI when
GANTRY_REQUIRE_SERVICES=1).
"""

import threading
import time

import pytest
from django.db import connection
from django_fsm.signals import pre_transition

from gates import services
from gates.models import GateDecision
from gates.services import StaleInitiative
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative, User
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance, criteria_passing


def _race(initiative_pk: int, user_pks: list[int]) -> list:
    """Each user, in their own thread and connection, approves the framing at the same moment.

    Returns what each thread got: the GateDecision or the exception it raised.
    """
    barrier = threading.Barrier(len(user_pks), timeout=20)
    outcomes: list = [None] * len(user_pks)

    def hold_while_deciding(sender, instance, name, **kwargs):
        # Sent inside decide()'s transaction, under the initiative's lock: the winner lingers
        # there so the others are already waiting for the lock when it commits.
        if sender is Initiative and name == T.APPROVE_FRAME:
            time.sleep(0.3)

    def attempt(index: int, user_pk: int) -> None:
        try:
            initiative = Initiative.objects.get(pk=initiative_pk)
            user = User.objects.get(pk=user_pk)
            # Every thread has loaded the initiative in frame before any of them decides.
            barrier.wait()
            outcomes[index] = services.decide(
                initiative=initiative,
                transition=T.APPROVE_FRAME,
                user=user,
                rationale=f"Approved by {user.username}.",
                expected_stage=Stage.FRAME,
            )
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    pre_transition.connect(hold_while_deciding, dispatch_uid="test-race")
    try:
        threads = [threading.Thread(target=attempt, args=(i, pk)) for i, pk in enumerate(user_pks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a decision never finished"
    finally:
        pre_transition.disconnect(dispatch_uid="test-race")
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_simultaneous_approvals_record_one_decision_and_tell_the_other_to_reload(
    require_postgres,
):
    first = UserFactory(username="pm-one", role=Role.PROGRAMME_MANAGER)
    second = UserFactory(username="exec-two", role=Role.EXECUTIVE)
    initiative = InitiativeFactory(framed=True)

    outcomes = _race(initiative.pk, [first.pk, second.pk])

    recorded = [o for o in outcomes if isinstance(o, GateDecision)]
    stale = [o for o in outcomes if isinstance(o, StaleInitiative)]
    assert len(recorded) == 1, outcomes
    assert len(stale) == 1, outcomes
    message = str(stale[0])
    assert "changed" in message
    assert "Reload" in message

    assert GateDecision.objects.filter(initiative=initiative).count() == 1
    decision = GateDecision.objects.get(initiative=initiative)
    assert decision.pk == recorded[0].pk
    assert (decision.from_stage, decision.to_stage) == (Stage.FRAME, Stage.THIN_SLICE)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE
    assert initiative.stage_entered_at == decision.decided_at


@pytest.mark.django_db(transaction=True)
def test_simultaneous_stop_and_approve_leave_one_consistent_outcome(require_postgres):
    # Different transitions from the same stage race as well: the loser must not write.
    pm = UserFactory(username="pm-one", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True)
    barrier = threading.Barrier(2, timeout=20)
    outcomes: dict = {}

    def hold(sender, instance, name, **kwargs):
        if sender is Initiative:
            time.sleep(0.3)

    def attempt(transition: str) -> None:
        try:
            mine = Initiative.objects.get(pk=initiative.pk)
            user = User.objects.get(pk=pm.pk)
            barrier.wait()
            outcomes[transition] = services.decide(
                initiative=mine,
                transition=transition,
                user=user,
                rationale="Racing.",
                stop_reason="superseded" if transition == T.STOP else "",
            )
        except Exception as exc:
            outcomes[transition] = exc
        finally:
            connection.close()

    pre_transition.connect(hold, dispatch_uid="test-race-mixed")
    try:
        threads = [threading.Thread(target=attempt, args=(t,)) for t in (T.APPROVE_FRAME, T.STOP)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        pre_transition.disconnect(dispatch_uid="test-race-mixed")

    winners = [t for t, o in outcomes.items() if isinstance(o, GateDecision)]
    losers = [t for t, o in outcomes.items() if isinstance(o, StaleInitiative)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    initiative.refresh_from_db()
    assert initiative.decisions.count() == 1
    expected = Stage.STOPPED if winners == [T.STOP] else Stage.THIN_SLICE
    assert initiative.stage == expected
    assert initiative.stop_reason == ("superseded" if winners == [T.STOP] else "")


# Without threads: a copy loaded before someone else's decision is stale (every database) ----
@pytest.mark.django_db
def test_deciding_on_a_copy_loaded_before_another_decision_raises_stale(manager, executive):
    initiative = InitiativeFactory(framed=True)
    mine = Initiative.objects.get(pk=initiative.pk)
    theirs = Initiative.objects.get(pk=initiative.pk)
    services.decide(
        initiative=theirs, transition=T.APPROVE_FRAME, user=executive, rationale="Theirs."
    )

    with pytest.raises(StaleInitiative, match="changed"):
        services.decide(
            initiative=mine, transition=T.APPROVE_FRAME, user=manager, rationale="Mine."
        )
    assert GateDecision.objects.filter(initiative=initiative).count() == 1
    assert GateDecision.objects.get(initiative=initiative).rationale == "Theirs."
    # The stale copy is reloaded, so the person sees the current stage next time.
    assert mine.stage == Stage.THIN_SLICE


@pytest.mark.django_db
def test_stale_stop_does_not_overwrite_a_newer_stage(manager, executive):
    initiative = InitiativeFactory(framed=True)
    stale = Initiative.objects.get(pk=initiative.pk)
    services.decide(
        initiative=initiative, transition=T.APPROVE_FRAME, user=executive, rationale="Go."
    )
    with pytest.raises(StaleInitiative):
        services.decide(
            initiative=stale,
            transition=T.STOP,
            user=manager,
            rationale="Too late.",
            stop_reason="superseded",
        )
    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE
    assert initiative.stop_reason == ""
    assert initiative.decisions.count() == 1


# Through HTTP: the page the person saw is out of date ---------------------------------------
@pytest.mark.django_db
def test_stale_decision_form_answers_409_with_reload_message_and_records_nothing(
    client, manager, executive
):
    initiative = InitiativeFactory(framed=True)
    # The manager opened the page in frame; meanwhile the executive approved the framing.
    services.decide(
        initiative=initiative, transition=T.APPROVE_FRAME, user=executive, rationale="Go."
    )
    client.force_login(manager)
    with criteria_passing():
        response = client.post(
            f"/initiatives/{initiative.slug}/decide/stop/",
            {
                "stop-rationale": "Stop it.",
                "stop-expected_stage": Stage.FRAME,
                "stop-stop_reason": "superseded",
            },
        )
    assert response.status_code == 409
    body = response.content.decode()
    assert "changed" in body
    assert "Reload" in body
    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE
    assert initiative.decisions.count() == 1


@pytest.mark.django_db
def test_stale_form_for_the_same_gate_answers_409_and_records_nothing(client, manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    client.force_login(manager)
    with criteria_passing():
        response = client.post(
            f"/initiatives/{initiative.slug}/decide/widen/",
            {"widen-rationale": "Widen.", "widen-expected_stage": Stage.READINESS_REVIEW},
        )
    assert response.status_code == 409
    assert "Reload" in response.content.decode()
    initiative.refresh_from_db()
    assert initiative.stage == Stage.NARROW_LAUNCH
    assert not initiative.decisions.filter(transition=T.WIDEN).exists()
