"""Moving the goalposts, the recorded way, in real Chromium: an owner proposes a new
threshold, a programme manager with no stake applies it, and the history shows both."""

import json

import pytest
from playwright.sync_api import expect

from gates import audit
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.e2e.conftest import assert_accessible, login
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


def test_owner_proposes_and_a_manager_with_no_stake_reframes(browser_page):
    page = browser_page
    manager = UserFactory(username="pm", first_name="Priya", last_name="Menon",
                          role=Role.PROGRAMME_MANAGER)  # fmt: skip
    owner = UserFactory(username="olu", first_name="Olu", last_name="Adeyemi", role=Role.OWNER)
    initiative = InitiativeFactory(title="Invoice matching", framed=True, business_owner=owner)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    url = page.base_url + initiative.get_absolute_url()

    # The owner cannot move the threshold; the framing form says why and offers a proposal.
    login(page, "olu", PASSWORD)
    page.goto(url + "edit/")
    expect(page.locator("#id_metric-ship_threshold")).to_be_disabled()
    page.click("text=Propose a change")
    page.fill("#id_ship_threshold", "80")
    page.fill("#id_rationale", "Matching volume doubled; 80% still pays for the run cost.")
    assert_accessible(page)
    page.click("button:has-text('Send proposal')")
    expect(page.locator(".notice")).to_contain_text("Olu Adeyemi proposed")
    expect(page.locator("section[aria-labelledby=history-h]")).to_contain_text(
        "Proposed a reframe: ship threshold 85 → 80"
    )
    assert Initiative.objects.get(pk=initiative.pk).primary_metric.ship_threshold == 85
    page.click("text=Sign out")

    # A programme manager with no stake starts from the proposal and records the reframe.
    login(page, "pm", PASSWORD)
    page.goto(url)
    page.click("text=Decide it")
    expect(page.locator("#id_ship_threshold")).to_have_value("80")
    page.fill("#id_rationale", "Agreed with finance: the business case holds at 80%.")
    assert_accessible(page)
    page.click("button:has-text('Record reframe')")

    history = page.locator("section[aria-labelledby=history-h]")
    expect(history).to_contain_text("Reframe success definition (in narrow launch)")
    expect(history).to_contain_text("Reframed ship threshold: 85 → 80")
    expect(page.locator(".notice")).to_have_count(0)
    assert_accessible(page)
    page.screenshot(path=str(page.shot_dir / "reframe-initiative-1366.png"), full_page=True)

    # The export carries the same chain, intact.
    exported = page.request.get(url + "audit.json")
    body = json.loads(exported.text())
    assert body["chain_intact"] is True
    assert [e["kind"] for e in body["entries"]][-4:] == [
        "proposal",
        "decision",
        "framing",
        "proposal",
    ]
    initiative = Initiative.objects.get(pk=initiative.pk)
    assert initiative.primary_metric.ship_threshold == 80
    assert initiative.decisions.filter(transition=T.REFRAME, decided_by=manager).exists()
    assert audit.verify([initiative.pk])[1] == []


def test_the_pages_that_guard_evidence_pass_axe(browser_page):
    from metrics import services as metric_services

    page = browser_page
    manager = UserFactory(username="pm", first_name="Priya", last_name="Menon",
                          role=Role.PROGRAMME_MANAGER)  # fmt: skip
    initiative = InitiativeFactory(title="Invoice matching", framed=True)
    feed, _ = metric_services.create_feed(
        initiative=initiative,
        user=manager,
        name="AP events",
        kind="live",
        owner=manager,
        freshness_hours=24,
    )
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    review = initiative.reviews.get()
    base = page.base_url + initiative.get_absolute_url()

    login(page, "pm", PASSWORD)
    for path in (
        review.get_absolute_url(),
        f"{initiative.get_absolute_url()}feeds/{feed.pk}/pause/",
        f"{initiative.get_absolute_url()}feeds/{feed.pk}/rotate/",
        f"{initiative.get_absolute_url()}edit/",
        f"{initiative.get_absolute_url()}reframe/",
    ):
        page.goto(page.base_url + path)
        assert_accessible(page)
    # A form sent back with its errors is accessible too.
    page.goto(base + f"feeds/{feed.pk}/pause/")
    page.click("button:has-text('Pause feed')")
    expect(page.locator(".errors").first).to_be_visible()
    assert_accessible(page)


def test_the_token_page_copies_the_token_with_one_click(browser_page):
    page = browser_page
    UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(title="Invoice matching", framed=True)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, "pm", PASSWORD)
    page.goto(page.base_url + initiative.get_absolute_url() + "feeds/new/")
    page.fill("#id_name", "AP events")
    page.click("button:has-text('Create feed and token')")
    token = page.locator("#token").inner_text().strip()
    button = page.locator("button[data-copy=token]")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert_accessible(page)
