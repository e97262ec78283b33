"""seed_demo: a complete, consistent demo portfolio that is safe to load twice."""

from io import StringIO
from itertools import pairwise

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from gates import services
from gates.criteria import blocking, registry
from gates.models import GateDecision
from gates.permissions import may_decide_review
from gates.stages import Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric
from portfolio.models import BusinessUnit, Initiative, User
from portfolio.roles import Role, role_of

pytestmark = pytest.mark.django_db

LOGINS = {
    "executive": Role.EXECUTIVE,
    "manager": Role.PROGRAMME_MANAGER,
    "owner": Role.OWNER,
    "viewer": Role.VIEWER,
}


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (BusinessUnit, User, Initiative, Metric, GateDecision)
    }


def decisions_of(initiative) -> list[GateDecision]:
    return list(initiative.decisions.order_by("decided_at", "id"))


@pytest.fixture
def seeded(db, monkeypatch) -> str:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    return seed()


def test_creates_one_login_per_role_with_the_default_password(seeded):
    for username, role in LOGINS.items():
        user = User.objects.get(username=username)
        assert role_of(user) == role
        assert authenticate(username=username, password="gantry-demo") == user


def test_login_password_comes_from_demo_password(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-secret")
    output = seed()
    assert authenticate(username="manager", password="another-demo-secret") is not None
    assert authenticate(username="manager", password="gantry-demo") is None
    assert "Password: another-demo-secret" in output


def test_people_who_only_own_initiatives_cannot_log_in(seeded):
    others = User.objects.exclude(username__in=LOGINS)
    assert others.count() >= 8
    assert not any(user.has_usable_password() for user in others)
    assert all(user.get_full_name() for user in others)


def test_prints_the_login_url_each_login_with_its_role_and_the_password(seeded):
    assert "http://127.0.0.1:8000/accounts/login/" in seeded
    for username, role in LOGINS.items():
        assert any(username in line and role.label in line for line in seeded.splitlines())
    assert "Password: gantry-demo" in seeded


def test_loads_about_thirty_initiatives_in_several_business_units(seeded):
    assert 28 <= Initiative.objects.count() <= 34
    assert BusinessUnit.objects.filter(initiatives__isnull=False).distinct().count() >= 5


@pytest.mark.parametrize("stage", Stage.values)
def test_every_stage_holds_several_initiatives(seeded, stage):
    assert Initiative.objects.filter(stage=stage).count() >= 3


def test_running_twice_creates_nothing_new(seeded):
    before = counts()
    output = seed()
    assert counts() == before
    assert "Initiatives: 0 created" in output
    assert "Gate decisions imported: 0" in output


def test_running_again_leaves_an_existing_login_and_initiative_alone(seeded):
    manager = User.objects.get(username="manager")
    manager.set_password("changed-by-the-manager")
    manager.save()
    initiative = Initiative.objects.get(title="Claims triage assistant")
    Initiative.objects.filter(pk=initiative.pk).update(summary="Edited in the demo.")

    output = seed()

    assert authenticate(username="manager", password="changed-by-the-manager") == manager
    assert "password unchanged" in output
    initiative.refresh_from_db()
    assert initiative.summary == "Edited in the demo."


def test_decisions_chain_from_frame_to_the_current_stage(seeded):
    now = timezone.now()
    for initiative in Initiative.objects.all():
        decisions = decisions_of(initiative)
        if not decisions:
            assert initiative.stage == Stage.FRAME
            continue
        assert decisions[0].from_stage == Stage.FRAME, initiative.title
        for earlier, later in pairwise(decisions):
            assert earlier.to_stage == later.from_stage, initiative.title
            assert earlier.decided_at < later.decided_at, initiative.title
        assert decisions[-1].to_stage == initiative.stage, initiative.title
        assert decisions[-1].decided_at < now
        assert initiative.stage_entered_at == decisions[-1].decided_at


def test_every_past_decision_was_taken_by_someone_allowed_to(seeded):
    for decision in GateDecision.objects.select_related("initiative", "decided_by"):
        method = getattr(Initiative, decision.transition)
        assert method._django_fsm.has_transition_perm(
            decision.initiative, decision.from_stage, decision.decided_by
        ), f"{decision.decided_by} may not {decision.transition} {decision.initiative}"
        assert decision.rationale.strip()


def test_history_shows_failed_reviews_a_roll_back_a_reopen_and_varied_stop_reasons(seeded):
    taken = set(GateDecision.objects.values_list("transition", flat=True))
    assert {T.FAIL_REVIEW, T.ROLL_BACK, T.REOPEN} <= taken
    assert GateDecision.objects.filter(transition=T.FAIL_REVIEW).count() >= 2
    reasons = set(
        GateDecision.objects.exclude(stop_reason="").values_list("stop_reason", flat=True)
    )
    assert {
        StopReason.THRESHOLD_NOT_MET,
        StopReason.RUNNING_COST_TOO_HIGH,
        StopReason.SUPERSEDED,
        StopReason.DATA_NOT_AVAILABLE,
    } <= reasons
    assert all(i.stop_reason for i in Initiative.objects.filter(stage=Stage.STOPPED))


def test_some_initiatives_have_been_in_their_stage_for_months(seeded):
    assert any(i.days_in_stage > 90 for i in Initiative.objects.exclude(stage=Stage.STOPPED))


def test_initiatives_past_frame_have_a_framed_primary_metric(seeded):
    past_frame = Initiative.objects.exclude(stage__in=[Stage.FRAME, Stage.STOPPED])
    for initiative in past_frame:
        metric = initiative.primary_metric
        assert metric is not None, initiative.title
        assert metric.ship_threshold is not None, initiative.title
        assert initiative.business_owner_id is not None, initiative.title


def test_some_frame_initiatives_are_held_at_gate_one(seeded):
    held = [
        initiative.title
        for initiative in Initiative.objects.filter(stage=Stage.FRAME)
        if blocking(registry.evaluate(initiative, T.APPROVE_FRAME))
    ]
    assert len(held) >= 2


def test_the_owner_login_owns_work_in_frame_and_in_thin_slice(seeded):
    owner = User.objects.get(username="owner")
    stages = {
        i.stage
        for i in Initiative.objects.all()
        if i.business_owner_id == owner.pk or i.delivery_lead_id == owner.pk
    }
    assert {Stage.FRAME, Stage.THIN_SLICE} <= stages


def test_the_manager_may_decide_every_open_readiness_review(seeded):
    manager = User.objects.get(username="manager")
    in_review = Initiative.objects.filter(stage=Stage.READINESS_REVIEW)
    assert in_review.exists()
    assert all(may_decide_review(initiative, manager) for initiative in in_review)


def test_claims_triage_assistant_passes_gate_one_and_the_manager_approves_it(seeded):
    initiative = Initiative.objects.get(title="Claims triage assistant")
    manager = User.objects.get(username="manager")
    assert initiative.stage == Stage.FRAME
    assert initiative.business_owner is not None
    assert not blocking(registry.evaluate(initiative, T.APPROVE_FRAME))
    assert T.APPROVE_FRAME in services.user_transitions(initiative, manager)

    services.decide(
        initiative=initiative,
        transition=T.APPROVE_FRAME,
        user=manager,
        rationale="Framing complete; go to a thin slice.",
    )

    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE
