"""The sign-in pages a person meets before Gantry itself: accessible, and within a phone."""

import re

import pytest
from django.core import mail

from tests.e2e.conftest import assert_accessible
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def check(page) -> None:
    for size in ({"width": 1366, "height": 768}, PHONE):
        page.set_viewport_size(size)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert_accessible(page)


def test_the_sign_in_page_with_single_sign_on_and_the_reset_pages(browser_page, settings):
    settings.GANTRY_OIDC_ISSUER = "https://idp.example.com"
    settings.GANTRY_PASSWORD_RESET = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    page = browser_page
    page.goto(page.base_url + "/accounts/login/")
    assert page.get_by_role("button", name="Sign in with single sign-on").is_visible()
    check(page)
    page.get_by_role("link", name="Forgotten your password?").click()
    check(page)
    UserFactory(username="sam", email="sam@example.com")
    page.fill("#id_email", "sam@example.com")
    page.get_by_role("button", name="Send the link").click()
    page.get_by_role("heading", name="Check your mail").wait_for()
    check(page)
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    page.goto(link)
    page.get_by_role("heading", name="Choose a new password").wait_for()
    page.fill("#id_new_password1", "short")
    page.fill("#id_new_password2", "other")
    page.get_by_role("button", name="Set the password").click()
    page.get_by_text("didn’t match").wait_for()
    check(page)


def test_the_lockout_page(browser_page):
    UserFactory(username="ann")
    page = browser_page
    for n in range(5):
        page.goto(page.base_url + "/accounts/login/")
        page.fill("#id_username", "ann")
        page.fill("#id_password", f"guess-{n}")
        page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="Too many failed sign-ins").wait_for()
    check(page)
