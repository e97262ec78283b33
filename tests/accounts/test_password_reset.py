"""Password reset works by mail where it is switched on, and is absent where it is not."""

import os
import re
import subprocess
import sys

import pytest
from django.core import mail
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


@pytest.fixture
def reset_on(settings):
    settings.GANTRY_PASSWORD_RESET = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_a_person_resets_their_password_through_the_mailed_link(reset_on):
    UserFactory(username="ann", email="ann@example.com")
    client = Client()
    assert b"Forgotten your password?" in client.get("/accounts/login/").content
    response = client.post("/accounts/password_reset/", {"email": "ann@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    [message] = mail.outbox
    assert message.to == ["ann@example.com"]
    assert message.subject == "Choose a new Gantry password"
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and b"New password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    signed = Client()
    signed.post("/accounts/login/", {"username": "ann", "password": "a-new-long-passphrase"})
    assert "_auth_user_id" in signed.session
    # The link works once.
    assert b"has been used or has expired" in client.get(link, follow=True).content


def test_an_unknown_address_gets_the_same_answer_and_no_mail(reset_on):
    response = Client().post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    assert mail.outbox == []


def test_a_mismatched_new_password_shows_the_field_error_and_keeps_the_old(reset_on):
    person = UserFactory(username="bo", email="bo@example.com")
    client = Client()
    client.post("/accounts/password_reset/", {"email": "bo@example.com"})
    link = re.search(r"(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(
        form_url, {"new_password1": "a-new-long-passphrase", "new_password2": "different-one"}
    )
    assert response.status_code == 200
    assert b"aria-invalid" in response.content
    person.refresh_from_db()
    assert person.check_password("correct-horse-battery")


@pytest.mark.parametrize("path", PAGES)
def test_switched_off_every_reset_page_is_absent(settings, path):
    settings.GANTRY_PASSWORD_RESET = False
    assert Client().get(path).status_code == 404


def test_switched_off_the_sign_in_page_does_not_offer_it(settings):
    settings.GANTRY_PASSWORD_RESET = False
    assert b"Forgotten your password?" not in Client().get("/accounts/login/").content


def test_without_password_sign_in_there_is_no_reset(settings, reset_on):
    settings.GANTRY_LOCAL_LOGIN = "superusers"
    assert Client().get("/accounts/password_reset/").status_code == 404


def setting(name: str, **env) -> str:
    """A setting as gantry.settings computes it from this environment."""
    clean = {k: v for k, v in os.environ.items() if k not in {"EMAIL_HOST", "DEBUG"}}
    code = f"import gantry.settings as s; print(s.{name})"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_reset_is_on_where_mail_leaves_the_machine_and_off_where_it_does_not():
    assert setting("GANTRY_PASSWORD_RESET") == "False"
    assert setting("GANTRY_PASSWORD_RESET", EMAIL_HOST="smtp.example.com") == "True"
    assert setting("GANTRY_PASSWORD_RESET", DEBUG="1") == "True"
    assert setting("GANTRY_PASSWORD_RESET", GANTRY_PASSWORD_RESET="1") == "True"
