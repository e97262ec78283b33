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
from tests.factories import InitiativeFactory, UserFactory
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
