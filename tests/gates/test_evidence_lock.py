"""Decisions read their evidence under the lock they write with (PostgreSQL, real connections).

Gate 4 against a reframe that raises the threshold: whichever takes the initiative's lock
first, the widen decision is judged on the definition that holds when it is written, and a
decision refused because the evidence changed under it says so.
"""

import threading
import time
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import connection
from django_fsm.signals import pre_transition

from gates import effects, services
from gates.criteria import Result, registry
from gates.models import GateDecision
from gates.services import GateRefused
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio import services as portfolio_services
from portfolio.models import Initiative, User
from portfolio.roles import Role
from tests.factories import InitiativeFactory, MetricSnapshotFactory, UserFactory
from tests.helpers import advance

pytestmark = [pytest.mark.django_db(transaction=True)]


@contextmanager
def only_real(*keys):
    """Every criterion passes except `keys`, which keep their real checks."""
    with registry.override(lambda initiative: Result(True, "passes (test)"), keep=keys):
        yield


@pytest.fixture
def launched(require_postgres):
    driver = UserFactory(username="driver", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=driver)
    metric = initiative.metrics.get(is_primary=True)
    # Pilot mean 90 against the threshold of 85: gate 4 passes until the threshold moves.
    MetricSnapshotFactory(metric=metric, pilot_value=90.0, latest=True)
    return initiative


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def _until(predicate, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the other connection never reached the lock"
        time.sleep(0.02)


def _run(target, results, key):
    def body():
        try:
            results[key] = target()
        except Exception as exc:
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_widen_waiting_on_a_reframe_is_refused_on_the_new_threshold(launched):
    reframer = UserFactory(username="pm-reframe", role=Role.PROGRAMME_MANAGER)
    decider = UserFactory(username="exec-widen", role=Role.EXECUTIVE)
    inside, release = threading.Event(), threading.Event()

    def hold(initiative, decision):  # runs inside the reframe's transaction, lock held
        inside.set()
        release.wait(20)

    effects.on(T.REFRAME)(hold)
    results: dict = {}
    try:
        with only_real("pilot_meets_threshold"):
            reframing = _run(
                lambda: portfolio_services.reframe(
                    initiative=Initiative.objects.get(pk=launched.pk),
                    user=User.objects.get(pk=reframer.pk),
                    values={"ship_threshold": Decimal("95")},
                    rationale="The business case now needs 95.",
                ),
                results,
                "reframe",
            )
            assert inside.wait(10)
            # The widen decision starts while the reframe is written but not committed: what
            # it reads before the lock still shows the old threshold.
            widening = _run(
                lambda: services.decide(
                    initiative=Initiative.objects.get(pk=launched.pk),
                    transition=T.WIDEN,
                    user=User.objects.get(pk=decider.pk),
                    rationale="Numbers hold.",
                    expected_stage=Stage.NARROW_LAUNCH,
                ),
                results,
                "widen",
            )
            _until(_waiting_on_a_lock)
            release.set()
            reframing.join(30)
            widening.join(30)
    finally:
        effects._effects[T.REFRAME].remove(hold)

    assert isinstance(results["reframe"], GateDecision), results
    refused = results["widen"]
    assert isinstance(refused, GateRefused), results
    assert "the evidence changed while you decided" in str(refused)
    assert "predates the reframe" in str(refused)
    launched.refresh_from_db()
    assert launched.stage == Stage.NARROW_LAUNCH
    assert not launched.decisions.filter(transition=T.WIDEN).exists()


def test_a_reframe_waiting_on_widen_applies_after_it_and_widen_records_the_old_threshold(
    launched,
):
    reframer = UserFactory(username="pm-reframe", role=Role.PROGRAMME_MANAGER)
    decider = UserFactory(username="exec-widen", role=Role.EXECUTIVE)
    inside, release = threading.Event(), threading.Event()

    def hold(sender, instance, name, **kwargs):  # inside decide(), lock held
        if sender is Initiative and name == T.WIDEN:
            inside.set()
            release.wait(20)

    pre_transition.connect(hold, dispatch_uid="test-widen-holds")
    results: dict = {}
    try:
        with only_real("pilot_meets_threshold"):
            widening = _run(
                lambda: services.decide(
                    initiative=Initiative.objects.get(pk=launched.pk),
                    transition=T.WIDEN,
                    user=User.objects.get(pk=decider.pk),
                    rationale="Numbers hold.",
                ),
                results,
                "widen",
            )
            assert inside.wait(10)
            reframing = _run(
                lambda: portfolio_services.reframe(
                    initiative=Initiative.objects.get(pk=launched.pk),
                    user=User.objects.get(pk=reframer.pk),
                    values={"ship_threshold": Decimal("95")},
                    rationale="The business case now needs 95.",
                ),
                results,
                "reframe",
            )
            _until(_waiting_on_a_lock)
            release.set()
            widening.join(30)
            reframing.join(30)
    finally:
        pre_transition.disconnect(dispatch_uid="test-widen-holds")

    widen, reframe = results["widen"], results["reframe"]
    assert isinstance(widen, GateDecision), results
    assert isinstance(reframe, GateDecision), results
    # Widen was judged, and recorded, against the threshold in force when it was written.
    assert widen.evidence["primary_metric"]["ship_threshold"] == "85.000000"
    assert reframe.decided_at > widen.decided_at
    assert (reframe.from_stage, reframe.to_stage) == (Stage.WIDE_LAUNCH, Stage.WIDE_LAUNCH)
    assert list(launched.audit_entries.values_list("kind", flat=True))[-3:] == [
        "decision",
        "decision",
        "framing",
    ]
