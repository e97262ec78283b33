"""Journeys a person takes, in real Chromium."""

import pytest
from playwright.sync_api import expect

from gates.models import GateDecision
from gates.stages import Stage
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.e2e.conftest import login
from tests.factories import BusinessUnitFactory, InitiativeFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


def test_manager_creates_frames_and_approves_gate_one(browser_page):
    page = browser_page
    UserFactory(username="pm", first_name="Priya", last_name="Menon", role=Role.PROGRAMME_MANAGER)
    UserFactory(username="bo", first_name="Bruno", last_name="Owusu", role=Role.OWNER)
    BusinessUnitFactory(name="Claims", slug="claims")

    login(page, "pm", PASSWORD)
    expect(page.locator(".role-tag")).to_have_text("Programme manager")

    page.click("text=Initiatives")
    page.click("text=New initiative")
    page.fill("#id_title", "Claims triage assistant")
    page.select_option("#id_business_unit", label="Claims")
    page.select_option("#id_business_owner", label="Bruno Owusu")
    page.fill("#id_decision_changed", "Which incoming claims an adjuster reviews first.")
    page.fill("#id_metric-name", "Claims triaged correctly")
    page.fill("#id_metric-unit", "%")
    page.fill("#id_metric-ship_threshold", "92")
    page.fill("#id_metric-baseline", "81")
    page.click("text=Save framing")

    expect(page.locator("h1")).to_contain_text("Claims triage assistant")
    expect(page.locator(".criteria").first).not_to_contain_text("✕")

    page.click("summary:has-text('Approve framing')")
    page.fill("#id_approve_frame-rationale", "Framed with a measurable threshold and an owner.")
    page.click("button:has-text('Approve framing')")

    expect(page.locator("h1 .stage")).to_have_text("Thin slice")
    expect(page.locator("section[aria-labelledby=history-h]")).to_contain_text("Approve framing")
    expect(page.locator("section[aria-labelledby=history-h]")).to_contain_text(
        "Framed with a measurable threshold"
    )

    initiative = Initiative.objects.get(title="Claims triage assistant")
    assert initiative.stage == Stage.THIN_SLICE
    decision = GateDecision.objects.get(initiative=initiative)
    assert decision.decided_by.username == "pm"
    assert decision.from_stage == Stage.FRAME and decision.to_stage == Stage.THIN_SLICE


def test_the_owner_box_suggests_people_as_one_types_and_filters_by_the_choice(browser_page):
    page = browser_page
    UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    grace = UserFactory(username="grace", first_name="Grace", last_name="Hopper")
    InitiativeFactory(title="Compiler assistant", business_owner=grace)
    InitiativeFactory(title="Someone else's pilot")
    login(page, "pm", "correct-horse-battery")

    page.goto(page.base_url + "/initiatives/")
    box = page.get_by_role("combobox", name="Owner", exact=True)
    box.press_sequentially("hop")
    suggestions = page.locator("#owner-suggestions option")
    expect(suggestions).to_have_count(1)
    expect(suggestions.first).to_have_attribute("value", "Grace Hopper (grace)")
    box.fill("Grace Hopper (grace)")
    box.press("Enter")

    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("Compiler assistant")
    expect(box).to_have_value("Grace Hopper (grace)")
