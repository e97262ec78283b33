"""seed_demo refuses a history the services would refuse, and then writes nothing.

Separate from test_seed_demo, whose module-wide demo would already hold these initiatives.
"""

import dataclasses
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from gantry.management.commands._demo_spec import BudgetDecisionPlan, BudgetPlan, Step, load
from gates.stages import Transition as T
from portfolio.models import Initiative, User
from value.models import BudgetRequest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_password(monkeypatch):
    # DEBUG is off in tests: without a password of its own the demo refuses before anything.
    monkeypatch.setenv("DEMO_PASSWORD", "a-password-of-our-own")


def test_without_debug_the_published_default_password_is_refused_and_nothing_is_written(
    monkeypatch,
):
    monkeypatch.delenv("DEMO_PASSWORD")
    with pytest.raises(CommandError, match="Set DEMO_PASSWORD"):
        seed()
    assert not User.objects.exists()
    assert not Initiative.objects.exists()


def test_without_debug_a_password_of_ones_own_is_used():
    output = seed()
    manager = User.objects.get(username="manager")
    assert manager.check_password("a-password-of-our-own")
    assert not manager.check_password("gantry-demo")
    assert "Password: a-password-of-our-own" in output


def test_with_debug_on_the_default_password_is_taken(monkeypatch, settings):
    monkeypatch.delenv("DEMO_PASSWORD")
    settings.DEBUG = True
    demo = demo_with("Invoice matching")
    monkeypatch.setattr("gantry.management.commands.seed_demo.load", lambda: demo)
    seed()
    assert User.objects.get(username="manager").check_password("gantry-demo")


def test_without_debug_a_run_that_creates_no_login_needs_no_password(monkeypatch):
    demo = demo_with("Invoice matching")
    monkeypatch.setattr("gantry.management.commands.seed_demo.load", lambda: demo)
    seed()  # with a password of its own: creates the logins
    monkeypatch.delenv("DEMO_PASSWORD")
    assert "password unchanged" in seed()


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def demo_with(title: str, **changes):
    """The demo portfolio reduced to one initiative, changed as given."""
    demo = load()
    spec = next(s for s in demo.initiatives if s.title == title)
    return dataclasses.replace(demo, initiatives=(dataclasses.replace(spec, **changes),))


def test_a_history_the_evidence_does_not_support_stops_the_demo_and_writes_nothing(monkeypatch):
    spec = next(s for s in load().initiatives if s.title == "Invoice matching")
    submit = Step(T.SUBMIT_FOR_REVIEW, "owner", 2, "The thin slice works.")
    passed = Step(T.PASS_REVIEW, "manager", 1, "Ready.")
    # Submitted for review without a feed: gate 2 refuses, as it would anyone.
    demo = demo_with(spec.title, feeds=(), history=(*spec.history, submit, passed))
    monkeypatch.setattr("gantry.management.commands.seed_demo.load", lambda: demo)
    with pytest.raises(CommandError, match=r"Invoice matching, 2 days ago.*Live data feed"):
        seed()
    assert not Initiative.objects.exists()
    assert not User.objects.exists()


def test_a_decision_by_someone_the_table_does_not_allow_stops_the_demo(monkeypatch):
    spec = next(s for s in load().initiatives if s.title == "Invoice matching")
    by_viewer = dataclasses.replace(spec.history[0], by="viewer")
    demo = demo_with(spec.title, history=(by_viewer,))
    monkeypatch.setattr("gantry.management.commands.seed_demo.load", lambda: demo)
    with pytest.raises(PermissionDenied):
        seed()
    assert not Initiative.objects.exists()


def budget(by: str = "owner", decided_by: str | None = "marcus.holt", days_ago: int = 20):
    decision = (
        BudgetDecisionPlan(decided_by, days_ago - 1, "approved", "Go.") if decided_by else None
    )
    return BudgetPlan(
        kind="build", amount="1000", by=by, days_ago=days_ago, from_day=-10, to_day=10,
        purpose="Thin slice.", decision=decision,
    )  # fmt: skip


@pytest.mark.parametrize(
    "plan",
    [
        budget(by="viewer"),  # a viewer asks for money
        budget(by="aisha.bello", decided_by="aisha.bello"),  # the requester decides her own
        budget(decided_by="executive"),  # an executive, but not this initiative's sponsor
    ],
)
def test_budget_asked_or_decided_by_someone_not_allowed_stops_the_demo(monkeypatch, plan):
    demo = demo_with("Invoice matching", budget=(plan,))
    monkeypatch.setattr("gantry.management.commands.seed_demo.load", lambda: demo)
    with pytest.raises(PermissionDenied):
        seed()
    assert not Initiative.objects.exists()
    assert not BudgetRequest.objects.exists()


def test_budget_asked_for_a_stopped_initiative_stops_the_demo(monkeypatch):
    # Supplier email triage was stopped 139 days ago: no budget after that.
    plan = budget(by="lukas.weber", decided_by=None, days_ago=100)
    demo = demo_with("Supplier email triage", budget=(plan,))
    monkeypatch.setattr("gantry.management.commands.seed_demo.load", lambda: demo)
    with pytest.raises(CommandError, match=r"Supplier email triage, budget requested 100 days ago"):
        seed()
    assert not BudgetRequest.objects.exists()
