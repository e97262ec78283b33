"""Money on measured evidence, in real Chromium: a launched initiative with no upkeep line is
flagged; its owner requests run budget, the sponsor hears of it, sees the evidence frozen
with the request and approves; the flag clears and the dashboard's value section moves."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from gates import audit
from gates.stages import Stage
from pages import purgatory
from portfolio.models import FlagKind, PurgatoryFlag
from portfolio.roles import Role
from tests.e2e.conftest import assert_accessible, login
from tests.factories import InitiativeFactory, MetricSnapshotFactory, UserFactory
from tests.helpers import advance
from value.models import BudgetLine, BudgetRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


def test_owner_requests_run_budget_and_the_sponsor_approves_on_the_evidence(browser_page):
    page = browser_page
    manager = UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    UserFactory(username="ceo", first_name="Catherine", last_name="Doyle", role=Role.EXECUTIVE)
    owner = UserFactory(username="olu", first_name="Olu", last_name="Adeyemi", role=Role.OWNER)
    sponsor = type(owner).objects.get(username="ceo")
    initiative = InitiativeFactory(
        title="Invoice matching", framed=True, business_owner=owner, sponsor=sponsor
    )
    advance(initiative, Stage.NARROW_LAUNCH, user=manager, upkeep=False)
    metric = initiative.metrics.get(is_primary=True)
    type(metric).objects.filter(pk=metric.pk).update(
        unit_value=Decimal("38"), value_currency="EUR", monthly_volume=Decimal("1200")
    )
    MetricSnapshotFactory(metric=metric, latest=True)
    purgatory.sync_flags()
    assert PurgatoryFlag.objects.filter(
        initiative=initiative, kind=FlagKind.NO_UPKEEP, cleared_at__isnull=True
    ).exists()
    url = page.base_url + initiative.get_absolute_url()
    today = timezone.localdate()

    # The owner sees the flag and the measured value, and asks for the upkeep.
    login(page, "olu", PASSWORD)
    page.goto(url)
    expect(page.locator("#flags")).to_contain_text("No budget line for its upkeep")
    panel = page.locator("section[aria-labelledby=budget-h]")
    expect(panel).to_contain_text("EUR 456,000.00")
    expect(panel).to_contain_text("90% interval")
    panel.locator("text=Request budget").click()
    page.select_option("#id_kind", "run")
    page.select_option("#id_answerable", str(owner.pk))
    page.fill("#id_amount", "18000")
    page.fill("#id_currency", "eur")
    page.fill("#id_starts_on", today.replace(day=1).isoformat())
    page.fill("#id_ends_on", (today + timedelta(days=365)).isoformat())
    page.fill("#id_purpose", "Hosting, monitoring and on-call for the next twelve months.")
    assert_accessible(page)
    page.click("button:has-text('Send the request')")
    expect(page.locator("h1")).to_contain_text("Run / upkeep budget: EUR 18,000.00")
    expect(page.locator(".outcome")).to_have_text("Awaiting the sponsor")
    expect(page.locator("section[aria-labelledby=evidence-h]")).to_contain_text("Meeting")
    page.click("text=Sign out")

    # The sponsor hears of it, and decides on the evidence frozen with the request.
    login(page, "ceo", PASSWORD)
    value = page.locator("section[aria-labelledby=value-h]")
    expect(value).to_contain_text("EUR 456,000")
    page.goto(page.base_url + "/notifications/")
    page.click("text=Invoice matching: a budget request awaits your decision")
    evidence = page.locator("section[aria-labelledby=evidence-h]")
    expect(evidence).to_contain_text("Meeting")
    expect(evidence).to_contain_text("456,000.00")
    expect(evidence).to_contain_text("No budget line for its upkeep")
    assert_accessible(page)
    page.check("input[name=outcome][value=approved]")
    page.fill("#id_rationale", "Pays for itself many times over at the low end of the interval.")
    page.click("button:has-text('Record the decision')")
    expect(page.locator(".outcome")).to_have_text("Approved")
    page.screenshot(path=str(page.shot_dir / "budget-request-1366.png"), full_page=True)

    line = BudgetLine.objects.get(initiative=initiative)
    assert (line.kind, line.amount, line.currency) == ("run", Decimal("18000.00"), "EUR")
    frozen = BudgetRequest.objects.get().evidence
    assert FlagKind.NO_UPKEEP in {f["kind"] for f in frozen["flags"]}
    assert frozen["snapshot"]["verdict"] == "meeting" and frozen["value"]["status"] == "measured"
    assert audit.verify([initiative.pk])[1] == []

    # The next flag sweep clears the flag; the dashboard counts the approved money.
    purgatory.sync_flags()
    page.goto(url)
    expect(page.locator("#flags")).not_to_contain_text("No budget line for its upkeep")
    expect(page.locator("section[aria-labelledby=history-h]")).to_contain_text(
        "Approved the run / upkeep budget request of EUR 18,000.00"
    )
    page.goto(page.base_url + "/")
    spend = page.locator("section[aria-labelledby=value-h] table", has_text="Approved")
    expect(spend.locator("td[data-label=Approved]")).to_contain_text("18,000")
    expect(spend.locator("td[data-label='Awaiting the sponsor']")).to_contain_text("0 requests")
    assert_accessible(page)
