"""The executive's weekly look at the portfolio, in real Chromium."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from gates.stages import Stage
from pages import purgatory
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.e2e.conftest import login
from tests.factories import InitiativeFactory, MetricSnapshotFactory, UserFactory
from tests.helpers import advance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_executive_sees_the_funnel_and_a_flagged_initiative_and_clicks_through(browser_page):
    page = browser_page
    UserFactory(username="ceo", first_name="Catherine", last_name="Doyle", role=Role.EXECUTIVE)
    manager = UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    stuck = InitiativeFactory(title="Supplier email triage", framed=True)
    advance(stuck, Stage.THIN_SLICE, user=manager)
    Initiative.objects.filter(pk=stuck.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=120)
    )
    InitiativeFactory(title="Warehouse slotting", framed=True)
    purgatory.sync_flags()

    login(page, "ceo", "correct-horse-battery")

    funnel = page.locator(".funnel")
    expect(funnel.locator(".funnel-row", has_text="Frame")).to_contain_text("1")
    expect(funnel.locator(".funnel-row", has_text="Thin slice")).to_contain_text("1")
    flagged = page.locator("table.flagged")
    expect(flagged).to_contain_text("Supplier email triage")
    expect(flagged).to_contain_text("120 days in thin slice; the limit is 90.")
    page.screenshot(path=str(page.shot_dir / "dashboard.png"), full_page=True)

    flagged.locator("a", has_text="Supplier email triage").click()
    expect(page.locator("h1")).to_contain_text("Supplier email triage")
    expect(page.locator("h1 .stage")).to_have_text("Thin slice")

    page.goto(page.base_url + "/initiatives/?flag=any")
    expect(page.locator("tbody tr")).to_have_count(1)
    page.screenshot(path=str(page.shot_dir / "list.png"), full_page=True)


def test_the_dashboard_answers_the_executives_questions_above_the_fold(browser_page):
    """At 1366x768, without scrolling or clicking: how many are in each stage, who is stuck
    and who owns it, how many got from pilot to production, which launched initiatives meet
    their targets, what changed in the last seven days, and as of when."""
    page = browser_page
    UserFactory(username="ceo", first_name="Catherine", last_name="Doyle", role=Role.EXECUTIVE)
    manager = UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    owner = UserFactory(first_name="Sofia", last_name="Rossi", role=Role.OWNER)
    stuck = InitiativeFactory(title="Supplier email triage", framed=True, business_owner=owner)
    advance(stuck, Stage.THIN_SLICE, user=manager)
    Initiative.objects.filter(pk=stuck.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=120)
    )
    launched = advance(
        InitiativeFactory(title="Invoice capture", framed=True), Stage.NARROW_LAUNCH, user=manager
    )
    MetricSnapshotFactory(metric=launched.metrics.get(is_primary=True), latest=True)
    purgatory.sync_flags()

    login(page, "ceo", "correct-horse-battery")

    def above_the_fold(locator):
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        assert box["y"] + box["height"] <= 768, (locator, box)
        return locator

    funnel = page.locator(".funnel")
    above_the_fold(funnel.locator(".funnel-row", has_text="Thin slice"))
    expect(funnel.locator(".funnel-row", has_text="Narrow launch")).to_contain_text("1")
    stuck_card = page.locator("section", has=page.locator("#stuck-h"))
    who = above_the_fold(stuck_card.locator("li", has_text="Supplier email triage"))
    expect(who).to_contain_text("Owner: Sofia Rossi")
    expect(who).to_contain_text("120 days in thin slice")
    conversion = above_the_fold(page.locator(".conv"))
    expect(conversion).to_contain_text("Reached narrow launch")
    meeting = above_the_fold(page.locator(".kpi", has_text="launched meet their ship threshold"))
    expect(meeting).to_contain_text("1of 1 launched")
    week = above_the_fold(page.locator("#week"))
    expect(week).to_contain_text("a gate decision: 2")  # both initiatives were decided today
    above_the_fold(page.locator(".as-of time"))
    page.screenshot(path=str(page.shot_dir / "dashboard-above-the-fold.png"))

    # The launched initiative's row says what it meets, with its direction and unit.
    row = page.locator(".status-table tbody tr", has_text="Invoice capture")
    expect(row).to_contain_text("Meeting threshold")
    expect(row).to_contain_text("better")
