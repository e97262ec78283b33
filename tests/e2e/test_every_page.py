"""Every main page, for every role, on a laptop and on a phone, in real Chromium: axe-core
finds no violation of any impact, and nothing is wider than a 390 px screen.

The demo portfolio (seed_demo) gives every page real content: initiatives in every stage,
open reviews, feeds, a reframe and a proposal.
"""

import pytest
from django.core.management import call_command

from portfolio.models import Initiative
from readiness.models import ReadinessReview
from tests.e2e.conftest import assert_accessible, login
from value.models import BudgetRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-demo-password-of-our-own"


@pytest.fixture(autouse=True)
def demo_password(monkeypatch):
    # DEBUG is off in tests, where seed_demo takes no published default.
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)


REFRAMED = "contact-centre-call-summarisation"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


def _pages() -> dict[str, list[str]]:
    """The main pages each role opens, from the seeded portfolio."""
    launched = Initiative.objects.get(slug=REFRAMED)
    framing = Initiative.objects.filter(stage="frame").order_by("title").first()
    stopped = Initiative.objects.filter(stage="stopped").order_by("title").first()
    review = ReadinessReview.objects.filter(outcome="open").select_related("initiative").first()
    feed = launched.feeds.first()
    waiting = BudgetRequest.objects.filter(decision__isnull=True).order_by("pk").first()
    decided = BudgetRequest.objects.filter(decision__isnull=False).order_by("pk").first()
    common = [
        "/",
        "/initiatives/",
        "/initiatives/?stage=thin_slice&sort=-days",
        launched.get_absolute_url(),
        framing.get_absolute_url(),
        stopped.get_absolute_url(),
        review.get_absolute_url(),
        "/my-work/",
        "/notifications/",
        "/notifications/preferences/",
        "/budget/",
        waiting.get_absolute_url(),
        decided.get_absolute_url(),
    ]
    return {
        "executive": common,
        "viewer": common,
        "owner": [
            *common,
            f"{launched.get_absolute_url()}propose/",
            f"{launched.get_absolute_url()}budget/request/",
        ],
        "manager": [
            *common,
            "/initiatives/new/",
            f"{framing.get_absolute_url()}edit/",
            f"{launched.get_absolute_url()}reframe/",
            f"{launched.get_absolute_url()}feeds/new/",
            f"{launched.get_absolute_url()}upload/",
            f"{launched.get_absolute_url()}feeds/{feed.pk}/pause/",
            f"{launched.get_absolute_url()}feeds/{feed.pk}/rotate/",
        ],
    }


def test_every_main_page_is_accessible_and_fits_a_phone_for_every_role(browser_page):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    problems = []
    for role, paths in _pages().items():
        page.context.clear_cookies()
        page.set_viewport_size(LAPTOP)
        login(page, role, PASSWORD)
        for size in (LAPTOP, PHONE):
            page.set_viewport_size(size)
            for path in paths:
                page.goto(page.base_url + path)
                page.wait_for_load_state("networkidle")
                if size is PHONE:
                    wide, screen = page.evaluate(
                        "[document.documentElement.scrollWidth, window.innerWidth]"
                    )
                    if wide > screen:
                        problems.append(f"{role} {path}: {wide} px wide on a {screen} px phone")
                try:
                    assert_accessible(page, impacts=None)
                except AssertionError as exc:
                    problems.append(f"{role} at {size['width']} px: {exc}")
    assert not problems, "\n".join(problems)


def test_the_first_tab_offers_to_skip_to_the_content(browser_page):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    login(page, "viewer", PASSWORD)
    page.goto(page.base_url + "/initiatives/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"


def test_the_login_page_is_accessible_on_a_phone(browser_page):
    page = browser_page
    page.set_viewport_size(PHONE)
    page.goto(page.base_url + "/accounts/login/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page, impacts=None)


def test_every_initiative_and_review_page_of_the_demo_fits_a_phone(browser_page):
    # Long evidence links, criteria quoting URLs, wide tables: every page the demo has.
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    page.set_viewport_size(PHONE)
    login(page, "manager", PASSWORD)
    paths = [i.get_absolute_url() for i in Initiative.objects.order_by("slug")]
    paths += [r.get_absolute_url() for r in ReadinessReview.objects.select_related("initiative")]
    too_wide = []
    for path in paths:
        page.goto(page.base_url + path)
        wide, screen = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if wide > screen:
            too_wide.append(f"{path}: {wide} px")
    assert not too_wide, too_wide
