"""The readiness review in real Chromium: an owner checks an item, a manager passes the review."""

import pytest
from playwright.sync_api import expect

from gates.stages import Stage
from portfolio.models import Initiative
from portfolio.roles import Role
from readiness import services
from readiness.models import ReviewOutcome
from tests.e2e.conftest import login
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


def test_owner_checks_an_item_and_the_manager_passes_the_review(browser_page):
    page = browser_page
    manager = UserFactory(username="pm", first_name="Priya", last_name="Menon",
                          role=Role.PROGRAMME_MANAGER)  # fmt: skip
    owner = UserFactory(username="olu", first_name="Olu", last_name="Adeyemi", role=Role.OWNER)
    initiative = InitiativeFactory(
        title="Invoice matching",
        framed=True,
        delivery_lead=owner,
        operational_owner=owner,
        narrow_audience="Accounts payable, Leeds",
    )
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    review = initiative.reviews.get(outcome=ReviewOutcome.OPEN)
    items = list(review.items.select_related("template_item", "review__initiative"))
    for item in items:
        services.assign(item=item, assignee=owner, user=manager)
    for item in items[:-1]:  # everything but the named operational owner is already done
        item.refresh_from_db()
        numbers = {}
        if item.template_item.asks_numbers:
            numbers = {"cost_per_transaction": 0.04, "monthly_volume": 120000, "currency": "EUR"}
        services.check(item=item, user=owner, evidence_text="Reviewed with the team.", **numbers)
    last = items[-1]

    login(page, "olu", PASSWORD)
    page.click("text=My work")
    expect(page.locator("main")).to_contain_text(last.template_item.title)
    page.click(f"text={last.template_item.title}")
    form = page.locator(f"#item-{last.pk}")
    form.locator("textarea").fill("Olu Adeyemi runs it; on the finance on-call rota from 1 Dec.")
    form.locator("input[type=url]").fill("https://wiki.example.internal/finance/oncall")
    form.locator("button:has-text('Check with this evidence')").click()
    expect(page.locator(f"#item-{last.pk} .box")).to_have_text("✓")
    page.click("text=Sign out")

    login(page, "pm", PASSWORD)
    page.goto(page.base_url + review.get_absolute_url())
    page.click("summary:has-text('Pass readiness review')")
    page.fill("#id_pass_review-rationale", "Every production question answered with evidence.")
    page.click("button:has-text('Pass readiness review')")
    expect(page.locator("h1 .outcome")).to_have_text("Passed")

    initiative = Initiative.objects.get(pk=initiative.pk)
    assert initiative.stage == Stage.NARROW_LAUNCH
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.PASSED and review.decided_by == manager
