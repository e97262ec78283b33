"""Failed sign-ins are throttled per username and per address, logged, and shown to admins.

The limit (GANTRY_LOGIN_FAILURE_LIMIT, 5) counts failures for one username from anywhere, and
failures from one address whatever the usernames; reaching either pauses sign-in for the
cool-off (GANTRY_LOGIN_COOLOFF_MINUTES, 15) with a 429 that says nothing about the account.
"""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from accounts.client import client_address
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
RIGHT = "correct-horse-battery"
LIMIT = 5


def attempt(username: str, password: str, *, address: str = "203.0.113.7"):
    """One sign-in from its own browser (no cookies shared), from `address`."""
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_the_limit_th_wrong_password_locks_the_account_even_against_the_right_one():
    UserFactory(username="ann")
    for n in range(1, LIMIT):
        response = attempt("ann", f"guess-{n}", address=f"198.51.100.{n}")
        assert response.status_code == 200  # the form again, with its error
    locked = attempt("ann", f"guess-{LIMIT}", address="198.51.100.99")
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    # From a fresh address, with the right password: still paused, and nobody is signed in.
    response = attempt("ann", RIGHT, address="192.0.2.1")
    assert response.status_code == 429
    assert "_auth_user_id" not in response.client.session


def test_one_address_guessing_many_usernames_is_locked_and_others_are_not():
    UserFactory(username="bob")
    for n in range(LIMIT):
        attempt(f"user-{n}", "guess", address="203.0.113.50")
    assert attempt("bob", RIGHT, address="203.0.113.50").status_code == 429
    assert signed_in(attempt("bob", RIGHT, address="203.0.113.51"))


def test_the_lockout_reads_the_same_for_an_account_that_does_not_exist():
    UserFactory(username="carol")
    for n in range(LIMIT):
        real = attempt("carol", f"guess-{n}", address=f"198.51.100.{n}")
        ghost = attempt("nobody-here", f"guess-{n}", address=f"192.0.2.{n}")
    assert real.status_code == ghost.status_code == 429
    assert real.content == ghost.content
    assert b"Too many failed sign-ins" in real.content


def test_the_wrong_password_and_the_unknown_username_get_the_same_form_error():
    UserFactory(username="dave")
    wrong = attempt("dave", "guess", address="198.51.100.1")
    unknown = attempt("nobody-here", "guess", address="198.51.100.2")
    assert wrong.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()


def test_after_the_cool_off_the_right_password_signs_in_and_clears_the_count():
    UserFactory(username="erin")
    for n in range(LIMIT):
        attempt("erin", f"guess-{n}")
    assert attempt("erin", RIGHT).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert signed_in(attempt("erin", RIGHT))
    assert not AccessAttempt.objects.filter(username="erin").exists()


def test_a_failure_is_logged_with_username_and_address_never_the_password(caplog):
    UserFactory(username="frank")
    with caplog.at_level(logging.INFO, logger="axes"):
        for n in range(LIMIT):
            attempt("frank", f"secret-guess-{n}", address="203.0.113.9")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "frank" in text and "203.0.113.9" in text
    assert "Locking out" in text
    assert "secret-guess" not in text
    stored = AccessAttempt.objects.get(username="frank")
    assert stored.ip_address == "203.0.113.9"
    assert "secret-guess" not in stored.post_data


def test_admins_see_the_attempts_and_others_do_not(client, superuser, manager):
    attempt("mallory-target", "guess", address="203.0.113.77")
    client.force_login(superuser)
    page = client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert b"mallory-target" in page.content and b"203.0.113.77" in page.content
    client.force_login(manager)
    assert client.get("/admin/axes/accessattempt/").status_code == 302  # to the admin login


@override_settings(GANTRY_LOGIN_FAILURE_LIMIT=None, AXES_FAILURE_LIMIT=2)
def test_the_limit_is_a_setting():
    UserFactory(username="gina")
    assert attempt("gina", "one").status_code == 200
    assert attempt("gina", "two").status_code == 429


class TestClientAddress:
    def request(self, **meta):
        return RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", **meta)

    def test_without_a_proxy_the_forwarded_header_is_ignored(self, settings):
        settings.BEHIND_TLS_PROXY = False
        forged = self.request(HTTP_X_FORWARDED_FOR="1.2.3.4")
        assert client_address(forged) == "10.0.0.2"

    def test_behind_the_proxy_the_address_it_appended_counts(self, settings):
        settings.BEHIND_TLS_PROXY = True
        # The client wrote 1.2.3.4 itself; the proxy appended what it saw.
        request = self.request(HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20")
        assert client_address(request) == "198.51.100.20"
        assert client_address(self.request()) == "10.0.0.2"
